"""The whole chain for the end-to-end tests: emulator → nginx → gateway → relay → sidecar → emulator.

nginx is the loopback variant rendered from deploy/nginx (``start_nginx``, which runs ``nginx -t``
first), listening on a port chosen before the stack starts so the emulator's callback URLs can
name it; 127.0.0.1 is listed as WeChat's address, as the DMZ host lists WeChat's callback IPs.
The three tiers are real processes (:class:`devtools.stack.Stack`) in ``tmp_path``.

Fixture (registered in tests/e2e/conftest.py): ``chain_factory``::

    chain = await chain_factory("pull", reply_budget_s=1.0)
    await chain.emu.scan("alice", qr_url=...)
    await chain.stack.kill("sidecar")

Every chain a test starts is stopped at teardown (nginx last).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devtools.emulator.client import EmulatorClient
from devtools.scenario import Browser, Scenario
from devtools.stack import Stack, StackOptions
from devtools.stack_config import RelayMode
from tests.e2e.nginx import NginxProcess, free_port, require_nginx, start_nginx


@dataclass
class Chain:
    """One running system behind nginx, with a plain HTTP session and the emulator's admin client."""

    stack: Stack
    nginx: NginxProcess
    http: aiohttp.ClientSession
    emu: EmulatorClient

    def scenario(self, lines: list[str] | None = None) -> Scenario:
        """The demo's scenario against this chain; its lines go to ``lines`` (shown when a test fails)."""
        sink = lines if lines is not None else []
        return Scenario(self.stack, self.http, self.emu, say=sink.append)

    async def inbox(self) -> list[dict[str, Any]]:
        """The sidecar's inbox rows (read-only), envelopes decoded, oldest first."""
        rows = await self.stack.sidecar_rows(
            "SELECT event_id, envelope, processed_at, reply, error FROM inbox ORDER BY received_at"
        )
        return [
            {"id": r[0], "envelope": json.loads(r[1]), "processed_at": r[2], "reply": r[3], "error": r[4]}
            for r in rows
        ]

    async def bindings(self) -> dict[tuple[str, str], str]:
        """(account, username) → wx_id, from the sidecar's store (read-only)."""
        rows = await self.stack.sidecar_rows("SELECT account, username, wx_id FROM bindings WHERE active = 1")
        return {(r[0], r[1]): r[2] for r in rows}

    async def spool_depth(self) -> float:
        """Events the gateway holds that the sidecar has not acknowledged yet."""
        return (await self.stack.metrics(self.http, "gateway")).value("wxgw_spool_depth")

    async def qr_for(self, username: str) -> str:
        """What ``username``'s binding QR code encodes: a link, their browser, ``get_qrcode``."""
        scenario = self.scenario()
        try:
            browser: Browser = await scenario.open_binding_link(username)
            answer = await browser.get_json(scenario.sidecar("/console/user_center/weixin/mp/get_qrcode/"))
        finally:
            for opened in scenario.browsers.values():
                await opened.close()
        assert answer["result"] is True, answer
        return str(answer["content"])


async def wait_for(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str, interval_s: float = 0.1
) -> float:
    """Poll ``check`` until it is true; answers the seconds it took, fails the test on timeout."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        await asyncio.sleep(interval_s)


def inbox_keys(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Per inbox row: who sent it, and what (the text, or the event and its key)."""
    keys = []
    for row in rows:
        message = row["envelope"]["message"]
        what = message.get("Content") or f"{message.get('Event', '')}:{message.get('EventKey', '')}"
        keys.append((row["envelope"]["account"], message.get("FromUserName", ""), what))
    return keys


ChainFactory = Callable[..., Awaitable[Chain]]


@pytest.fixture
async def chain_factory(tmp_path: Path) -> AsyncIterator[ChainFactory]:
    """``await chain_factory(relay_mode, **StackOptions fields)``: a started chain, stopped at teardown."""
    require_nginx()
    async with AsyncExitStack() as exits:

        async def start(relay_mode: RelayMode = "push", **options: Any) -> Chain:
            front_port = free_port()
            workdir = tmp_path / f"stack-{front_port}"
            stack = Stack(
                workdir,
                StackOptions(relay_mode=relay_mode, callback_base=f"http://127.0.0.1:{front_port}", **options),
                ready_timeout_s=60.0,
            )
            nginx = exits.enter_context(start_nginx(workdir, front_port, stack.ports.gateway, whitelist=["127.0.0.1"]))
            await exits.enter_async_context(stack)
            http = await exits.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)))
            emu = await exits.enter_async_context(EmulatorClient(stack.urls.emulator))
            return Chain(stack, nginx, http, emu)

        yield start


__all__ = ["Chain", "ChainFactory", "chain_factory", "inbox_keys", "wait_for"]
