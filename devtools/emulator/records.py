"""What the emulator observed, kept for inspection: deliveries (what each phone shows), API calls, pushes.

These are the facts end-to-end tests assert on, so each record serialises to plain JSON with
``as_json`` and nothing here interprets them further.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

SERVICE_ERROR = "该公众号暂时无法提供服务，请稍后再试"

Channel = Literal["mp.template", "mp.custom", "mp.reply", "mp.service_error", "wecom.message", "wecom.reply"]
DeliveryStatus = Literal["delivered", "dropped", "duplicate"]
PushStatus = Literal["pending", "replied", "acknowledged", "bad_reply", "failed"]
_LIMIT = 100_000


@dataclass
class Delivery:
    """One message that reached (or was meant for) a person's phone."""

    seq: int
    at: float
    person: str
    channel: Channel
    app: str
    to: str
    status: DeliveryStatus
    text: str
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    agentid: int | None = None
    msgid: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class DeliveryExtras(TypedDict, total=False):
    """The optional :class:`Delivery` fields, so ``World.deliver(**extras)`` is checked against them."""

    detail: dict[str, Any]
    reason: str
    agentid: int | None
    msgid: str


@dataclass
class Call:
    """One request to a WeChat endpoint (not the admin API), as the call log shows it."""

    seq: int
    at: float
    method: str
    path: str
    app: str
    errcode: int | None
    http_status: int
    fault: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Attempt:
    number: int
    elapsed_s: float
    http_status: int | None = None
    error: str = ""
    body: str = ""


@dataclass
class Push:
    """One callback as WeChat's servers deliver it: up to N attempts with the same query and body."""

    id: int
    kind: Literal["mp", "wecom"]
    app: str
    agentid: int | None
    person: str
    to_user: str
    message: dict[str, str]
    url: str
    status: PushStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    shown: str | None = None
    reply: dict[str, str] = field(default_factory=dict)
    problem: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Records:
    """Append-only logs, bounded so a long-running demo does not grow without limit."""

    def __init__(self) -> None:
        self.deliveries: deque[Delivery] = deque(maxlen=_LIMIT)
        self.calls: deque[Call] = deque(maxlen=_LIMIT)
        self.pushes: dict[int, Push] = {}
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_push(self, push: Push) -> None:
        self.pushes[push.id] = push
        if len(self.pushes) > _LIMIT:
            del self.pushes[min(self.pushes)]

    def phone(self, person: str) -> list[Delivery]:
        """What the person's phone shows, oldest first: delivered messages only."""
        return [d for d in self.deliveries if d.person == person and d.status == "delivered"]
