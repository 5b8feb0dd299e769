"""Fixtures for the operations suite: a running stack watched by a real Prometheus."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from devtools.emulator.client import EmulatorClient
from devtools.stack import Stack, StackOptions
from devtools.stack_config import RelayMode
from tests.e2e.chain import wait_for
from tests.ops.prom import PrometheusServer, binary

SCRAPE_TIMEOUT_S = 30.0


@dataclass
class Monitored:
    """The three tiers on loopback, a Prometheus scraping both of ours, an HTTP session, the emulator."""

    stack: Stack
    prometheus: PrometheusServer
    http: aiohttp.ClientSession
    emu: EmulatorClient


MonitoredFactory = Callable[[RelayMode], Awaitable[Monitored]]


@pytest.fixture
async def monitored_factory(tmp_path: Path) -> AsyncIterator[MonitoredFactory]:
    """``await monitored_factory(relay_mode)``: started, both targets scraped; all stopped at teardown."""
    binary("prometheus")
    async with AsyncExitStack() as exits:

        async def start(relay_mode: RelayMode) -> Monitored:
            stack = Stack(tmp_path / "stack", StackOptions(relay_mode=relay_mode), ready_timeout_s=60.0)
            await exits.enter_async_context(stack)
            targets = {
                "wx-gateway": [f"127.0.0.1:{stack.ports.gateway}"],
                "wx-sidecar": [f"127.0.0.1:{stack.ports.sidecar}"],
            }
            prometheus = await exits.enter_async_context(PrometheusServer(tmp_path / "prometheus", targets))
            http = await exits.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))
            emu = await exits.enter_async_context(EmulatorClient(stack.urls.emulator))

            async def scraped() -> bool:
                return await prometheus.targets_up(http)

            await wait_for(scraped, timeout_s=SCRAPE_TIMEOUT_S, what="Prometheus to scrape both tiers", interval_s=0.5)
            return Monitored(stack, prometheus, http, emu)

        yield start
