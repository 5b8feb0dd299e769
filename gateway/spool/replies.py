"""Who is waiting for which spooled event's passive reply, on the event loop (no I/O here).

A callback registers a waiter for its event id, then waits until the sidecar's acknowledgement
for that id is delivered (with a reply, or None) or its reply budget runs out. An
acknowledgement that carries a reply nobody waits for any more is counted as late.
"""

from __future__ import annotations

import asyncio
import logging

import contract
from gateway.metrics import GatewayMetrics

log = logging.getLogger("gateway.spool.queue")

ReplyFuture = asyncio.Future[contract.Reply | None]


class ReplyWaiters:
    """Waiters by event id; the spool owns one and feeds it every acknowledgement."""

    def __init__(self, loop: asyncio.AbstractEventLoop, metrics: GatewayMetrics) -> None:
        self._loop = loop
        self._metrics = metrics
        self._waiting: dict[str, set[ReplyFuture]] = {}

    def register(self, event_id: str) -> ReplyFuture:
        """A waiter that every acknowledgement of ``event_id`` delivered from now on resolves."""
        future: ReplyFuture = self._loop.create_future()
        self._waiting.setdefault(event_id, set()).add(future)
        return future

    def forget(self, event_id: str, future: ReplyFuture) -> None:
        waiting = self._waiting.get(event_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._waiting[event_id]

    async def wait(self, future: ReplyFuture, deadline: float) -> contract.Reply | None:
        """The waiter's reply, or None once ``deadline`` (event-loop time) passes.

        A timer answering None at the deadline (what a timeout returns anyway) is much cheaper
        than asyncio.timeout_at's cancel-and-uncancel machinery, and this runs for every callback.
        """
        if future.done():
            return future.result()
        timer = self._loop.call_at(deadline, _time_up, future)
        try:
            return await future
        finally:
            timer.cancel()

    def deliver(self, event_id: str, account: str, reply: contract.Reply | None) -> None:
        """An acknowledgement of ``event_id``: wake its waiters, or count a reply nobody awaits."""
        waiting = [f for f in self._waiting.pop(event_id, set()) if not f.done()]
        for future in waiting:
            future.set_result(reply)
        if reply is not None and not waiting:
            self._metrics.replies.labels(account, "late").inc()
            log.info("passive reply arrived after the reply budget", extra={"event": event_id})

    def release_all(self) -> None:
        """Shutting down: no acknowledgement will come, so every waiter gets None now."""
        for futures in self._waiting.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)


def _time_up(future: ReplyFuture) -> None:
    if not future.done():
        future.set_result(None)
