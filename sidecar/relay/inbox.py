"""The exactly-once inbox: relayed events are processed once each, whatever the gateway retries.

A relayed batch (one push request, or one pull lease: up to 100 events) is processed in ONE
store transaction, committed durably once. For each event, in order: insert the inbox row
(idempotent on the event id), run the handlers registered for it inside a savepoint (their
store effects use the same transaction), and record the passive reply. So:

* a crash before the commit leaves nothing of the batch behind; nothing is acknowledged, the
  gateway delivers the events again and they are processed then;
* a crash after the commit but before the acknowledgement reaches the gateway makes the next
  delivery a duplicate: the handlers do not run again and the stored reply is returned. An
  event twice in one batch is a duplicate the second time too.

Handlers must keep to store work on the transaction they are given (it holds the store's write
lock while they run) and should be quick. A handler that raises anything but StoreUnavailable is
a bug, not a transient failure (that includes a conflict such as UserAlreadyBound, or a call
on the Store instead of the given tx): its savepoint rolls back that event's effects only, the
event is recorded as processed with the error, acknowledged and logged, and the rest of the
batch commits, so one poison event cannot block the relay forever. StoreUnavailable (locked,
full or failing database) rolls the whole batch back and propagates: the relay answers 503 and
the gateway retries later. Metrics and log lines are written per event after the commit, so
one ``event processed`` line means one committed run of the handlers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from common.logs import short_id
from contract import Envelope, Reply, Result
from sidecar.errors import StoreUnavailable
from sidecar.metrics import SidecarMetrics
from sidecar.store import InboxCompletion, Repositories, Store, Transaction

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
_Status = Literal["accepted", "duplicate", "failed"]


@dataclass(frozen=True)
class _Outcome:
    """What became of one event of a batch, reported once the batch has committed."""

    event: Event
    status: _Status
    reply: Reply | None
    error: str | None = None

    def result(self) -> Result:
        """The gateway's acknowledgement: a failed handler is still an accepted event."""
        if self.status == "duplicate":
            return Result(id=self.event.id, status="duplicate", reply=self.reply)
        return Result(id=self.event.id, status="accepted", reply=self.reply)


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

    def __init__(self, metrics: SidecarMetrics, *, clock: Callable[[], float] = time.time) -> None:
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

        Every matching handler runs, in registration order, in the event's savepoint; the
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

    async def process_batch(self, store: Store, envelopes: Sequence[Envelope]) -> list[Result]:
        """Process a relayed batch exactly once, in one durable commit; results in event order.

        Raises StoreUnavailable with nothing committed when the store fails (answer 503).
        """
        if not envelopes:
            return []
        now = self._clock()
        events = [Event(envelope, now) for envelope in envelopes]
        async with store.transaction() as tx:
            outcomes = await self._process(tx, events, now)
        for outcome in outcomes:  # only now is it true: committed
            self._report(outcome)
        return [outcome.result() for outcome in outcomes]

    async def _process(self, tx: Transaction, events: list[Event], now: float) -> list[_Outcome]:
        """Claim the new ids in one statement, run their handlers, record them in one more."""
        new = await tx.inbox.add_many([event.envelope for event in events], received_at=now)
        seen = {event.id for event in events if event.id not in new}
        stored = await tx.inbox.get_many(seen) if seen else {}
        first: dict[str, _Outcome] = {}  # the run of each id new in this batch
        outcomes: list[_Outcome] = []
        for event in events:
            if event.id in first:  # twice in this batch: the second is a duplicate of the first
                outcomes.append(_Outcome(event, "duplicate", first[event.id].reply))
            elif event.id not in new:
                record = stored.get(event.id)
                outcomes.append(_Outcome(event, "duplicate", record.reply if record else None))
            else:
                first[event.id] = await self._run(tx, event)
                outcomes.append(first[event.id])
        done = [InboxCompletion(o.event.id, now, o.reply, o.error) for o in first.values()]
        await tx.inbox.complete_many(done)
        return outcomes

    async def _run(self, tx: Transaction, event: Event) -> _Outcome:
        """Run the handlers; a bug (anything but StoreUnavailable) fails only this event."""
        try:
            reply = await self._handle(event, tx)
        except StoreUnavailable:
            raise
        except Exception as exc:
            return _Outcome(event, "failed", None, f"{type(exc).__name__}: {exc}"[:500])
        return _Outcome(event, "accepted", reply)

    async def _handle(self, event: Event, tx: Transaction) -> Reply | None:
        if self._known_accounts is not None and event.account not in self._known_accounts:
            raise LookupError(f"account {event.account!r} is not configured in this sidecar")
        handlers = self.handlers_for(event)
        if not handlers:
            return None  # nothing can change, so no savepoint to pay for
        reply: Reply | None = None
        async with tx.savepoint() as handling:  # a raise undoes this event's effects only
            for handler in handlers:
                answer = await handler(event, handling)
                if reply is None:
                    reply = answer
        return reply

    def _report(self, outcome: _Outcome) -> None:
        """Metrics and the log line of one committed event."""
        event = outcome.event
        self._count(event, outcome.status)
        if outcome.status == "failed":
            log.error(
                "event handler failed", extra={"event_id": event.id, "account": event.account, "error": outcome.error}
            )
        elif outcome.status == "accepted":
            log.info(
                "event processed",
                extra={
                    "event_id": event.id,
                    "account": event.account,
                    "type": event.msg_type,
                    "event": event.event,
                    "user": short_id(event.from_user),
                    "reply": outcome.reply is not None,
                },
            )

    def _count(self, event: Event, status: str) -> None:
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
