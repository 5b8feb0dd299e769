"""Simulated people: what happens in WeChat when someone follows, scans, writes or leaves.

Each action changes the world first (WeChat records a follow whatever the callback server says)
and then builds the callback WeChat would push; the caller sends it with ``Pusher.send``.
"""

from __future__ import annotations

import secrets
from typing import Any

from devtools.emulator.config import MpApp, WecomAgent, WecomCorp
from devtools.emulator.errors import AdminError, Conflict, Gone
from devtools.emulator.pusher import Outgoing, Pusher
from devtools.emulator.records import Push
from devtools.emulator.state import Person, QrTicket, World

Prepared = tuple[Push, Outgoing]


def _mp_base(world: World, app: MpApp, person: Person) -> dict[str, Any]:
    return {"ToUserName": app.original_id, "FromUserName": person.openids[app.appid], "CreateTime": int(world.clock())}


def _msgid() -> int:
    return secrets.randbits(63)


def follow(world: World, pusher: Pusher, person: Person, app: MpApp) -> Prepared:
    """Follow by searching the account: subscribe with an empty EventKey."""
    openid = person.openids[app.appid]
    if world.follows(app.appid, openid):
        raise Conflict(f"{person.name} already follows {app.appid}")
    world.subscribed.add((app.appid, openid))
    world.touch(app.appid, openid)
    fields = {**_mp_base(world, app, person), "MsgType": "event", "Event": "subscribe", "EventKey": ""}
    return pusher.mp(app, person.name, fields)


def scan(world: World, pusher: Pusher, person: Person, ticket: QrTicket) -> Prepared:
    """Scan a parametric QR code: subscribe + qrscene_<scene> for newcomers, SCAN for followers."""
    if ticket.expires_at is not None and world.clock() >= ticket.expires_at:
        raise Gone("the QR code has expired")
    app = world.mp_app(ticket.appid)
    openid = person.openids[app.appid]
    base = {**_mp_base(world, app, person), "MsgType": "event"}
    if world.follows(app.appid, openid):
        fields = {**base, "Event": "SCAN", "EventKey": ticket.scene, "Ticket": ticket.ticket}
    else:
        world.subscribed.add((app.appid, openid))
        fields = {**base, "Event": "subscribe", "EventKey": f"qrscene_{ticket.scene}", "Ticket": ticket.ticket}
    world.touch(app.appid, openid)
    return pusher.mp(app, person.name, fields)


def unsubscribe(world: World, pusher: Pusher, person: Person, app: MpApp) -> Prepared:
    openid = person.openids[app.appid]
    if not world.follows(app.appid, openid):
        raise Conflict(f"{person.name} does not follow {app.appid}")
    world.subscribed.discard((app.appid, openid))
    fields = {**_mp_base(world, app, person), "MsgType": "event", "Event": "unsubscribe", "EventKey": ""}
    return pusher.mp(app, person.name, fields)


def mp_text(world: World, pusher: Pusher, person: Person, app: MpApp, content: str) -> Prepared:
    """A text message to the account; only followers can write to it."""
    openid = person.openids[app.appid]
    if not world.follows(app.appid, openid):
        raise Conflict(f"{person.name} does not follow {app.appid} and cannot write to it")
    world.touch(app.appid, openid)
    fields = {**_mp_base(world, app, person), "MsgType": "text", "Content": content, "MsgId": _msgid()}
    return pusher.mp(app, person.name, fields)


def _member(person: Person, corp: WecomCorp) -> str:
    userid = person.wecom.get(corp.corpid)
    if userid is None:
        raise Conflict(f"{person.name} is not a member of {corp.corpid}")
    return userid


def wecom_base(world: World, person: Person, corp: WecomCorp, agent: WecomAgent) -> dict[str, Any]:
    return {"ToUserName": corp.corpid, "FromUserName": _member(person, corp), "CreateTime": int(world.clock())}


def wecom_text(
    world: World, pusher: Pusher, person: Person, corp: WecomCorp, agent: WecomAgent, content: str
) -> Prepared:
    fields = {
        **wecom_base(world, person, corp, agent),
        "MsgType": "text",
        "Content": content,
        "MsgId": _msgid(),
        "AgentID": agent.agentid,
    }
    return pusher.wecom(corp, agent, person.name, fields)


Target = MpApp | tuple[WecomCorp, WecomAgent]


def custom(world: World, pusher: Pusher, person: Person, target: Target, extra: object) -> Prepared:
    """Any event or message: the caller's fields over the sender/receiver/time WeChat fills in."""
    if not isinstance(extra, dict) or not extra.get("MsgType"):
        raise AdminError('"fields" must be an object with at least MsgType')
    if not all(isinstance(k, str) and k.isidentifier() and isinstance(v, str | int) for k, v in extra.items()):
        raise AdminError('"fields" must map element names to strings or integers')
    if isinstance(target, MpApp):
        return pusher.mp(target, person.name, {**_mp_base(world, target, person), **extra})
    corp, agent = target
    fields = {**wecom_base(world, person, corp, agent), **extra}
    fields.setdefault("AgentID", agent.agentid)
    return pusher.wecom(corp, agent, person.name, fields)
