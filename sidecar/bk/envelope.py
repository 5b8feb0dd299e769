"""BlueKing API conventions (bk-compat.md): request parameters and the response envelope.

Every BlueKing-compatible endpoint answers HTTP 200 with
``{"result", "code", "message", "data", "request_id"}``; parameters come from the query and a
body that is JSON when it starts with ``{`` and form data otherwise (body values win).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from common import logs
from sidecar.errors import MalformedRequest

CODE_OK = 0
CODE_FAILED = 1306000
CODE_THIRD_PARTY = 1306201
CODE_RATE_LIMITED = 1306429
BAD_JSON = "Request JSON string is wrong in format, which cannot be analyzed."


async def read_params(request: web.Request) -> tuple[dict[str, Any], bytes]:
    """Merged parameters and the raw body; unparsable JSON raises MalformedRequest(BAD_JSON), and so
    does a body that cannot be read (too large, or not decodable as its Content-Encoding says)."""
    body = await _read_body(request) if request.can_read_body else b""
    params: dict[str, Any] = dict(request.query)
    params.update(parse_body(body))
    return params, body


async def _read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise MalformedRequest(f"Request body is larger than {request.client_max_size} bytes") from None
    except web.RequestPayloadError:
        raise MalformedRequest("Request body could not be read: bad Content-Encoding or cut short") from None


def parse_body(body: bytes) -> dict[str, Any]:
    stripped = body.strip()
    if not stripped:
        return {}
    if stripped.startswith(b"{"):
        try:
            text = stripped.decode("utf-8")
            value = json.loads(text)
            if "\\u" in text:  # "\\ud800" is valid JSON but no text: it could be neither stored nor sent
                json.dumps(value, ensure_ascii=False).encode("utf-8")
        except (UnicodeError, ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
            raise MalformedRequest(BAD_JSON) from None
        if not isinstance(value, dict):
            raise MalformedRequest(BAD_JSON)
        return value
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("form body is not UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def bk_response(*, result: bool, code: int, message: str, data: Any = None) -> web.Response:
    """The envelope, always HTTP 200; ``request_id`` is the one the middleware assigned.

    The message is one line: form errors quote the caller's value, which may hold line breaks.
    """
    one_line = " ".join(message.split())
    return web.json_response(
        {"result": result, "code": code, "message": one_line, "data": data, "request_id": logs.request_id.get()},
        dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
    )


__all__ = [
    "BAD_JSON",
    "CODE_FAILED",
    "CODE_OK",
    "CODE_RATE_LIMITED",
    "CODE_THIRD_PARTY",
    "bk_response",
    "parse_body",
    "read_params",
]
