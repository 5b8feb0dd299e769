"""Helpers every WeChat API handler shares: the JSON body, the caller's token, WeChat-shaped answers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devtools.emulator.errors import ApiError
from devtools.emulator.jsonwire import wechat_json
from devtools.emulator.keys import CALLER, WORLD
from devtools.emulator.tokens import Family, IssuedToken


async def read_json(request: web.Request) -> dict[str, Any]:
    """The JSON object body; anything else is WeChat's 47001 (data format error)."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(47001, "data format error") from None
    if not isinstance(body, dict):
        raise ApiError(47001, "data format error")
    return body


def authenticate(request: web.Request, family: Family) -> IssuedToken:
    """The token in ``?access_token=``, checked; also names the caller in the call log."""
    token = request.app[WORLD].tokens.check(request.query.get("access_token"), family)
    request[CALLER] = token.owner
    return token


def ok(**fields: Any) -> web.Response:
    return wechat_json({"errcode": 0, "errmsg": "ok", **fields})


def text_field(body: dict[str, Any], name: str, errcode: int, errmsg: str) -> str:
    """A required non-empty string member of a request body, or the given WeChat error."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(errcode, errmsg)
    return value
