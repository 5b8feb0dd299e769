"""Event ids and envelopes: what one relayed WeChat callback looks like on the wire.

The id is deterministic (relay-contract.md, "Event id") so that every gateway replica and every
WeChat retry of the same callback yields the same id; both tiers dedupe on it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

from contract.accounts import ACCOUNT_KINDS, AccountKind
from contract.errors import ContractError

Mode = Literal["plain", "compat", "safe"]

MODES: frozenset[str] = frozenset({"plain", "compat", "safe"})
EVENT_ID_RE = re.compile(r"^evt_[0-9a-f]{32}$")


class Envelope(TypedDict):
    """One relayed callback, exactly as serialised on the wire."""

    id: str
    account: str
    kind: AccountKind
    mode: Mode
    received_at: str
    message: dict[str, Any]


def dedupe_key(message: dict[str, Any]) -> str:
    """WeChat's own notion of "the same callback": MsgId for messages, else the event tuple.

    Event and EventKey are part of the event key because batch events can share a CreateTime.
    """
    msg_id = _text(message.get("MsgId"))
    if msg_id:
        return "msg:" + msg_id
    parts = (_text(message.get(k)) for k in ("FromUserName", "CreateTime", "Event", "EventKey"))
    return "evt:" + "|".join(parts)


def event_id(account: str, message: dict[str, Any]) -> str:
    """``evt_`` + the first 32 hex digits of sha256(account + "\\n" + dedupe key)."""
    digest = hashlib.sha256((account + "\n" + dedupe_key(message)).encode("utf-8")).hexdigest()
    return "evt_" + digest[:32]


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a ``Z``, as in the contract's example."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def make_envelope(
    account: str, kind: AccountKind, mode: Mode, message: dict[str, Any], received_at: datetime
) -> Envelope:
    """Build the envelope for a decrypted callback; the id is derived, never chosen."""
    return Envelope(
        id=event_id(account, message),
        account=account,
        kind=kind,
        mode=mode,
        received_at=format_timestamp(received_at),
        message=message,
    )


def parse_envelope(obj: Any) -> Envelope:
    """Validate an envelope received from the other tier; raise ContractError naming the field."""
    if not isinstance(obj, dict):
        raise ContractError("event is not an object")
    for field in ("id", "account", "kind", "mode", "received_at"):
        if not isinstance(obj.get(field), str):
            raise ContractError(f"event field {field!r} missing or not a string")
    if not EVENT_ID_RE.match(obj["id"]):
        raise ContractError(f"event id {obj['id'][:40]!r} is not evt_ + 32 hex digits")
    if obj["kind"] not in ACCOUNT_KINDS:
        raise ContractError(f"event kind {obj['kind'][:20]!r} is not mp or wecom")
    if obj["mode"] not in MODES:
        raise ContractError(f"event mode {obj['mode'][:20]!r} is not plain, compat or safe")
    if not isinstance(obj.get("message"), dict):
        raise ContractError("event field 'message' missing or not an object")
    if event_id(obj["account"], obj["message"]) != obj["id"]:
        raise ContractError(f"event id {obj['id']} does not match its account and message")
    return Envelope(
        id=obj["id"],
        account=obj["account"],
        kind=obj["kind"],
        mode=obj["mode"],
        received_at=obj["received_at"],
        message=obj["message"],
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
