"""Building relayed events and signed relay requests for the sidecar's relay tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from contract import Envelope, RelaySigner, dump_json, make_envelope
from tests.sidecar.helpers import RELAY_SECRET


def event(
    event: str = "subscribe",
    *,
    openid: str = "oUser0001",
    account: str = "main",
    when: str = "1700000000",
    **extra: str,
) -> Envelope:
    message: dict[str, Any] = {
        "ToUserName": "gh_test",
        "FromUserName": openid,
        "CreateTime": when,
        "MsgType": "event",
        "Event": event,
        **extra,
    }
    return make_envelope(account, "mp", "safe", message, datetime(2026, 1, 1, tzinfo=UTC))


def text_message(content: str, *, msg_id: str = "1000001", openid: str = "oUser0001") -> Envelope:
    message = {
        "ToUserName": "gh_test",
        "FromUserName": openid,
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id,
    }
    return make_envelope("main", "mp", "safe", message, datetime(2026, 1, 1, tzinfo=UTC))


def signed(payload: Any, *, secret: str = RELAY_SECRET, clock: Any = None) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else dump_json(payload)
    signer = RelaySigner([secret]) if clock is None else RelaySigner([secret], clock=clock)
    return body, signer.headers(body)
