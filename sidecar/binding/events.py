"""Dispatcher handlers: an MP user scanning a binding QR code becomes bound (wechat-protocol.md §1).

A non-follower's scan arrives as ``subscribe`` with ``EventKey = qrscene_<scene>``, a
follower's as ``SCAN`` with ``EventKey = <scene>``. Both run inside the inbox's transaction
(``tx``), so the binding, the attempt's outcome and the stored passive reply commit together:
a redelivered event is answered from the inbox and binds nothing twice.

Replies (text, shown in the chat): 绑定成功 or BlueKing's reason; a clear message for an
unknown, used or expired code; a welcome for a plain ``subscribe`` (BlueKing crashed on a
``subscribe`` without a Ticket). Scans of codes that are not ours are
left to other handlers: no reply. Ours are exactly ``bind_`` + 32 hex digits.
"""

from __future__ import annotations

import logging

from common.logs import short_id
from contract import Reply, text_reply
from sidecar.binding import texts
from sidecar.binding.service import SCENE_RE, complete
from sidecar.relay.inbox import Dispatcher, Event
from sidecar.store import BindingAttempt, Repositories

log = logging.getLogger(__name__)

QRSCENE = "qrscene_"


def scene_of(event: Event) -> str:
    """The scene a scan carries ("" for none)."""
    key = event.field("EventKey").strip()
    if event.event == "subscribe":
        return key[len(QRSCENE) :] if key.startswith(QRSCENE) else ""
    return key


async def on_scan(event: Event, tx: Repositories) -> Reply | None:
    """``subscribe`` / ``SCAN`` on an MP account."""
    scene = scene_of(event)
    if not SCENE_RE.match(scene):
        return text_reply(texts.WELCOME) if event.event == "subscribe" else None
    openid = event.from_user
    if not openid:
        return None
    session = await tx.binding_attempts.by_scene(event.account, scene)
    if session is None or session.kind != "mp":
        log.info("scan of an unknown binding code", extra={"account": event.account, "user": short_id(openid)})
        return text_reply(texts.SCENE_UNKNOWN)
    at = scan_time(event, session)
    if session.status != "pending":
        already = session.status == "bound" and session.wx_id == openid
        return text_reply(texts.NO_NEED if already else texts.SCENE_USED)
    if session.expires_at <= at:
        log.info("scan of an expired binding code", extra={"account": event.account, "user": short_id(openid)})
        return text_reply(texts.SCENE_EXPIRED)
    outcome = await complete(tx, session, openid, now=at)
    return text_reply(outcome.message)


def scan_time(event: Event, session: BindingAttempt) -> float:
    """When the user scanned: WeChat's CreateTime when plausible, else the processing time.

    A relay backlog (sidecar down for a while) must not turn a scan made in time into an
    "expired" answer; a CreateTime before the code existed or in the future is not believed.
    """
    raw = event.field("CreateTime")
    if raw.isdigit():
        created = float(raw)
        if session.created_at - 1 <= created <= event.now:
            return created
    return event.now


def register(dispatcher: Dispatcher) -> None:
    dispatcher.register(on_scan, kind="mp", msg_type="event", event="subscribe")
    dispatcher.register(on_scan, kind="mp", msg_type="event", event="scan")


__all__ = ["on_scan", "register", "scan_time", "scene_of"]
