"""The WeCom API: gettoken, message/send (invaliduser, 81013, rate limits, duplicate check), getuserinfo.

Paths and answers follow qyapi.weixin.qq.com. Messages beyond a member's rate limit are accepted
and silently dropped, as WeCom does; the emulator still records them (status ``dropped``).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from common.config import Secret
from devtools.emulator.calls import authenticate, ok, read_json, text_field
from devtools.emulator.config import WecomAgent, WecomCorp
from devtools.emulator.errors import ApiError
from devtools.emulator.keys import CALLER, WORLD
from devtools.emulator.render import truncate_bytes
from devtools.emulator.state import World

MAX_USERS = 1000
MAX_DUPLICATE_INTERVAL_S = 14_400


async def gettoken(request: web.Request) -> web.Response:
    """GET /cgi-bin/gettoken: one token per corpid+secret, the same one while it is valid."""
    world = request.app[WORLD]
    corpid, secret = request.query.get("corpid"), request.query.get("corpsecret")
    if not corpid:
        raise ApiError(41002, "corpid missing")
    if not secret:
        raise ApiError(41004, "corpsecret missing")
    corp = world.config.corp(corpid)
    if corp is None:
        raise ApiError(40013, "invalid corpid")
    request[CALLER] = corp.corpid
    agent = next((a for a in corp.agents if Secret(a.secret).matches(secret)), None)
    if agent is None:
        raise ApiError(40001, "invalid credential")
    issued = world.tokens.wecom(corp.corpid, agent.agentid)
    return ok(access_token=issued.value, expires_in=issued.expires_in(world.clock()))


def _caller(request: web.Request) -> tuple[World, WecomCorp, WecomAgent]:
    world = request.app[WORLD]
    token = authenticate(request, "wecom")
    corp = world.config.corp(token.owner)
    assert corp is not None and token.agentid is not None  # tokens are only issued to configured agents
    agent = corp.agent(token.agentid)
    assert agent is not None
    return world, corp, agent


def _content(msgtype: object, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the member's phone shows, applying WeCom's size rules (truncate or refuse)."""
    part = body.get(msgtype) if isinstance(msgtype, str) else None
    if msgtype not in ("text", "textcard", "markdown"):
        raise ApiError(40008, "invalid message type")
    if not isinstance(part, dict):
        raise ApiError(44004, "empty content")
    if msgtype == "text":
        content = truncate_bytes(text_field(part, "content", 44004, "empty content"), 2048)
        return content, {"msgtype": "text", "content": content}
    if msgtype == "markdown":
        content = text_field(part, "content", 44004, "empty content")
        if len(content.encode("utf-8")) > 2048:
            raise ApiError(45002, "content size out of limit")
        return content, {"msgtype": "markdown", "content": content}
    card = {
        "msgtype": "textcard",
        "title": truncate_bytes(text_field(part, "title", 44004, "empty content"), 128),
        "description": truncate_bytes(text_field(part, "description", 44004, "empty content"), 512),
        "url": text_field(part, "url", 40058, "invalid parameter: textcard.url"),
        "btntxt": str(part.get("btntxt") or "详情")[:4],
    }
    return f"{card['title']}\n{card['description']}\n[{card['btntxt']}] {card['url']}", card


def _recipients(world: World, corp: WecomCorp, body: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Valid member userids (WeCom userids are case-insensitive) and the invalid* reply fields."""
    touser, toparty, totag = (body.get(k) or "" for k in ("touser", "toparty", "totag"))
    if not all(isinstance(v, str) for v in (touser, toparty, totag)):
        raise ApiError(47001, "data format error")
    if not (touser or toparty or totag):
        raise ApiError(40058, "invalid parameter: touser, toparty and totag are all empty")
    members = {m.lower(): m for m in world.members[corp.corpid]}
    wanted = sorted(members.values()) if touser == "@all" else list(dict.fromkeys(u for u in touser.split("|") if u))
    if len(wanted) > MAX_USERS:
        raise ApiError(40058, f"invalid parameter: touser has more than {MAX_USERS} users")
    valid = [members[u.lower()] for u in wanted if u.lower() in members]
    invalid = {
        "invaliduser": "|".join(u for u in wanted if u.lower() not in members),
        "invalidparty": toparty,
        "invalidtag": totag,
    }
    return valid, {k: v for k, v in invalid.items() if v}


def _duplicate_window(body: dict[str, Any]) -> float | None:
    enabled = body.get("enable_duplicate_check", 0)
    interval = body.get("duplicate_check_interval", 1800)
    if enabled not in (0, 1) or isinstance(interval, bool) or not isinstance(interval, int):
        raise ApiError(47001, "data format error")
    if not 0 < interval <= MAX_DUPLICATE_INTERVAL_S:
        raise ApiError(40058, f"invalid parameter: duplicate_check_interval must be 1..{MAX_DUPLICATE_INTERVAL_S}")
    return float(interval) if enabled else None


def _gate(world: World, key: tuple[str, int, str], fingerprint: str, window: float | None) -> str:
    """'' to deliver, or why WeCom silently drops it: a duplicate or the member's rate limit."""
    now, timing = world.clock(), world.config.timing
    last = world.wecom_recent.get((*key, fingerprint))
    if window is not None and last is not None and now - last < window:
        return "duplicate"
    sent = world.wecom_sent[key]
    while sent and now - sent[0] >= 3600:
        sent.popleft()
    if len(sent) >= timing.wecom_per_hour or sum(1 for t in sent if now - t < 60) >= timing.wecom_per_minute:
        return "rate_limit"
    sent.append(now)
    world.wecom_recent[(*key, fingerprint)] = now
    return ""


async def message_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/message/send: an app message to members, with WeCom's partial-failure reply."""
    world, corp, agent = _caller(request)
    body = await read_json(request)
    agentid = body.get("agentid")
    if str(agentid) != str(agent.agentid) or isinstance(agentid, bool):
        raise ApiError(40056, "invalid agentid")
    text, detail = _content(body.get("msgtype"), body)
    valid, invalid = _recipients(world, corp, body)
    if not valid:
        raise ApiError(81013, "user & party & tag all invalid", **invalid)
    window = _duplicate_window(body)
    fingerprint = json.dumps(detail, sort_keys=True, ensure_ascii=False)
    msgid = secrets.token_urlsafe(24)
    for userid in valid:
        reason = _gate(world, (corp.corpid, agent.agentid, userid), fingerprint, window)
        world.deliver(
            person=world.person_by_userid(corp.corpid, userid) or userid,
            channel="wecom.message",
            app=corp.corpid,
            to=userid,
            text=text,
            detail=detail,
            status="duplicate" if reason == "duplicate" else "dropped" if reason else "delivered",
            reason=reason,
            agentid=agent.agentid,
            msgid=msgid,
        )
    return ok(**invalid, msgid=msgid)


async def getuserinfo(request: web.Request) -> web.Response:
    """GET /cgi-bin/auth/getuserinfo: the member behind a login code (single use, 5 minutes)."""
    world, corp, _agent = _caller(request)
    code = request.query.get("code")
    if not code:
        raise ApiError(41008, "missing code")
    login = world.redeem_code(code, corp.corpid)
    return ok(userid=login.userid)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/cgi-bin/gettoken", gettoken)
    app.router.add_post("/cgi-bin/message/send", message_send)
    app.router.add_get("/cgi-bin/auth/getuserinfo", getuserinfo)
