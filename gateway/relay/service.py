"""The relay inward, in the mode the config names: push (``relay_push``) or pull (``relay_pull``).

``relay_service`` is the one entry point the app uses (a cleanup context wraps it): it starts the
workers or the listener, yields a ``RelayService`` for ``/readyz``, and stops them on exit, before
the spool closes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics
from gateway.relay.pull import PullRelay
from gateway.relay.push import PushRelay
from gateway.spool.queue import Spool


class RelayRunner(Protocol):
    """What both modes offer: a lifecycle and a health line."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> tuple[bool, str]: ...
    @property
    def listen_address(self) -> tuple[str, int] | None: ...


class RelayService:
    """A running relay, as ``/readyz`` sees it."""

    def __init__(self, mode: str, runner: RelayRunner, spool: Spool, max_lag_s: float) -> None:
        self.mode = mode
        self._runner = runner
        self._spool = spool
        self._max_lag_s = max_lag_s

    def __repr__(self) -> str:
        return f"RelayService({self.mode!r})"

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """The pull listener's bound address (None in push mode)."""
        return self._runner.listen_address

    def healthy(self) -> tuple[bool, str]:
        """False with a reason when the relay is not running or lags more than ``ready_max_lag_s``."""
        running, detail = self._runner.health()
        if not running:
            return False, detail
        lag = self._spool.stats().oldest_unacked_age_s
        if lag > self._max_lag_s:
            return False, f"oldest unacknowledged event is {lag:.0f} s old (limit {self._max_lag_s:.0f} s); {detail}"
        return True, detail


@contextlib.asynccontextmanager
async def relay_service(
    config: GatewayConfig,
    spool: Spool,
    metrics: GatewayMetrics,
    *,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[RelayService]:
    """Run the configured relay for the duration of the ``async with`` block."""
    relay = config.relay
    runner: RelayRunner
    if relay.mode == "push":
        runner = PushRelay(relay, spool, metrics, clock=clock)
    else:
        runner = PullRelay(relay, spool, metrics, clock=clock)
    await runner.start()
    try:
        yield RelayService(relay.mode, runner, spool, relay.ready_max_lag_s)
    finally:
        await runner.stop()
