"""Typed application state of the gateway's public app, and the shapes it relies on.

The callback handlers depend on the spool and the relay only through the protocols below, so
they read as a specification of what they need (and tests can hand them a fake). The real
``gateway.spool.queue.Spool`` and ``gateway.relay.service.RelayService`` satisfy them structurally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from contract import Envelope, Reply
from gateway.config import GatewayConfig
from gateway.metrics import GatewayMetrics

__all__ = ["CLOCK", "CONFIG", "METRICS", "RELAY", "SPOOL", "EventSpool", "RelayHealth", "SpoolStatsView"]


class SpoolStatsView(Protocol):
    @property
    def depth(self) -> int: ...

    @property
    def oldest_unacked_age_s(self) -> float: ...


class EventSpool(Protocol):
    """What the callback path needs of the spool: durable commit with the reply wait, lookup."""

    async def commit_and_wait_reply(self, envelope: Envelope, deadline: float) -> tuple[bool, Reply | None]: ...

    async def contains(self, event_id: str) -> bool: ...

    async def wait_reply(self, event_id: str, timeout_s: float) -> Reply | None: ...

    async def writable(self) -> bool: ...

    def stats(self) -> SpoolStatsView: ...


class RelayHealth(Protocol):
    """What /readyz needs of the relay: whether it keeps up, and why not."""

    def healthy(self) -> tuple[bool, str]: ...


CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config", GatewayConfig)
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics", GatewayMetrics)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
SPOOL: web.AppKey[EventSpool] = web.AppKey("spool")
RELAY: web.AppKey[RelayHealth] = web.AppKey("relay")
