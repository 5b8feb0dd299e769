"""The exactly-once inbox: relayed events are processed once each, whatever the gateway retries.

For each event, in ONE store transaction: insert the inbox row (idempotent on the event id),
run the handlers registered for it (their store effects use the same transaction), and record
the passive reply. So:

* a crash before the commit leaves nothing behind; the event is not acknowledged, the gateway
  delivers it again and it is processed then;
* a crash after the commit but before the acknowledgement reaches the gateway makes the next
  delivery a duplicate: the handlers do not run again and the stored reply is returned.

Handlers must keep to store work on the transaction they are given (it holds the store's write
lock while they run) and should be quick. A handler that raises anything but a StoreError is a
bug, not a transient failure: the event is recorded as processed with the error, acknowledged
and logged, so one poison event cannot block the relay forever. A StoreError propagates (the
relay answers 503 and the gateway retries later).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common.logs import short_id
from contract import Envelope, Reply, Result
from sidecar.errors import NestedTransaction, StoreError
from sidecar.metrics import SidecarMetrics
from sidecar.store import Repositories, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One relayed callback as handlers see it; ``now`` is the processing time (injected clock)."""

    envelope: Envelope
    now: float

    @property
    def id(self) -> str:
        return self.envelope["id"]

    @property
    def account(self) -> str:
        return self.envelope["account"]

    @property
    def kind(self) -> str:
        return self.envelope["kind"]

    @property
    def message(self) -> dict[str, Any]:
        return self.envelope["message"]

    def field(self, name: str) -> str:
        """A top-level message field as text ("" when absent or not text)."""
        value = self.message.get(name)
        return value if isinstance(value, str) else ""

    @property
    def msg_type(self) -> str:
        return self.field("MsgType").lower()

    @property
    def event(self) -> str:
        """The Event field, lower-cased (WeChat writes ``subscribe`` but ``SCAN``)."""
        return self.field("Event").lower()

    @property
    def from_user(self) -> str:
        """The sender's openid (MP) or userid (WeCom)."""
        return self.field("FromUserName")


Handler = Callable[[Event, Repositories], Awaitable[Reply | None]]


@dataclass(frozen=True)
class _Route:
    kind: str | None
    msg_type: str | None
    event: str | None
    handler: Handler

    def matches(self, event: Event) -> bool:
        return (
            (self.kind is None or self.kind == event.kind)
            and (self.msg_type is None or self.msg_type == event.msg_type)
            and (self.event is None or self.event == event.event)
        )


class Dispatcher:
    """Routes events to handlers by (kind, MsgType, Event) and runs them through the inbox."""

    def __init__(self, *, clock: Callable[[], float] = time.time, metrics: SidecarMetrics | None = None) -> None:
        self._routes: list[_Route] = []
        self._clock = clock
        self._metrics = metrics
        self._known_accounts: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"Dispatcher(routes={len(self._routes)})"

    def register(
        self, handler: Handler, *, kind: str | None = None, msg_type: str | None = None, event: str | None = None
    ) -> None:
        """Call ``handler`` for matching events; None matches anything. Case-insensitive.

        Every matching handler runs, in registration order, in the same transaction; the
        first non-None reply is the passive reply. Register during app setup, before start.
        """
        self._routes.append(
            _Route(
                kind.lower() if kind else None,
                msg_type.lower() if msg_type else None,
                event.lower() if event else None,
                handler,
            )
        )

    def limit_accounts(self, names: frozenset[str]) -> None:
        """Events for other accounts are recorded with an error instead of being handled."""
        self._known_accounts = names

    def handlers_for(self, event: Event) -> list[Handler]:
        return [route.handler for route in self._routes if route.matches(event)]

    async def process(self, store: Store, envelope: Envelope) -> Result:
        """Process one event exactly once; returns the acknowledgement for the gateway."""
        event = Event(envelope, self._clock())
        try:
            async with store.transaction() as tx:
                if not await tx.inbox.add(envelope, received_at=event.now):
                    return await self._duplicate(tx, event)
                reply = await self._handle(event, tx)
                await tx.inbox.complete(event.id, reply=reply, processed_at=event.now)
        except NestedTransaction as exc:  # a handler used the Store, not its tx: a bug, not an outage
            return await self._record_failure(store, event, exc)
        except StoreError:
            raise
        except Exception as exc:
            return await self._record_failure(store, event, exc)
        self._count(event, "accepted")
        log.info(
            "event processed",
            extra={
                "event_id": event.id,
                "account": event.account,
                "type": event.msg_type,
                "event": event.event,
                "user": short_id(event.from_user),
                "reply": reply is not None,
            },
        )
        return Result(id=event.id, status="accepted", reply=reply)

    async def _handle(self, event: Event, tx: Repositories) -> Reply | None:
        if self._known_accounts is not None and event.account not in self._known_accounts:
            raise LookupError(f"account {event.account!r} is not configured in this sidecar")
        reply: Reply | None = None
        for handler in self.handlers_for(event):
            answer = await handler(event, tx)
            if reply is None:
                reply = answer
        return reply

    async def _duplicate(self, tx: Repositories, event: Event) -> Result:
        stored = await tx.inbox.get(event.id)
        self._count(event, "duplicate")
        return Result(id=event.id, status="duplicate", reply=stored.reply if stored else None)

    async def _record_failure(self, store: Store, event: Event, exc: Exception) -> Result:
        """The handlers failed (a bug): keep the event, marked with its error, and acknowledge it."""
        reason = f"{type(exc).__name__}: {exc}"[:500]
        log.error("event handler failed", extra={"event_id": event.id, "account": event.account, "error": reason})
        async with store.transaction() as tx:
            if not await tx.inbox.add(event.envelope, received_at=event.now):
                return await self._duplicate(tx, event)
            await tx.inbox.complete(event.id, reply=None, processed_at=event.now, error=reason)
        self._count(event, "failed")
        return Result(id=event.id, status="accepted", reply=None)

    def _count(self, event: Event, status: str) -> None:
        if self._metrics is not None:
            self._metrics.relay_events.labels(event.account, status).inc()


async def unsubscribe_handler(event: Event, tx: Repositories) -> Reply | None:
    """``unsubscribe``: mark the binding inactive, so later sends report it instead of failing."""
    if event.from_user and await tx.bindings.set_active_by_wx_id(event.account, event.from_user, False, now=event.now):
        log.info("binding marked inactive", extra={"account": event.account, "user": short_id(event.from_user)})
    return None


async def resubscribe_handler(event: Event, tx: Repositories) -> Reply | None:
    """``subscribe`` from an openid whose binding was marked inactive: it is active again."""
    if event.from_user and await tx.bindings.set_active_by_wx_id(event.account, event.from_user, True, now=event.now):
        log.info("binding reactivated", extra={"account": event.account, "user": short_id(event.from_user)})
    return None


def register_builtin_handlers(dispatcher: Dispatcher) -> None:
    dispatcher.register(unsubscribe_handler, msg_type="event", event="unsubscribe")
    dispatcher.register(resubscribe_handler, msg_type="event", event="subscribe")


__all__ = ["Dispatcher", "Event", "Handler", "register_builtin_handlers"]
