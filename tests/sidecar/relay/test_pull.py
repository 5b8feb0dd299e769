"""The pull-mode client against a fake gateway pull listener (relay-contract.md, "Pull mode")."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contract import Envelope, RelayVerifier, SignatureError, dump_json, load_json, parse_results
from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.keys import STORE
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher, register_builtin_handlers
from sidecar.relay.transport import PullClient, PullError
from sidecar.store import SqliteStore, open_sqlite_store
from tests.sidecar.helpers import RELAY_SECRET, config_text, write_config
from tests.sidecar.relayhelp import event


@dataclass
class FakeGateway:
    """Serves queued events on /relay/v1/lease and records /relay/v1/ack, checking signatures."""

    queued: list[Envelope] = field(default_factory=list)
    acks: list[list[dict[str, Any]]] = field(default_factory=list)
    leases: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    acked: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.verifier = RelayVerifier([RELAY_SECRET])

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/relay/v1/lease", self.lease)
        app.router.add_post("/relay/v1/ack", self.ack)
        return app

    async def _verified(self, request: web.Request) -> Any:
        body = await request.read()
        try:
            self.verifier.verify(body, request.headers)
        except SignatureError as exc:
            self.rejected += 1
            raise web.HTTPUnauthorized(text=str(exc)) from None
        return load_json(body)

    async def lease(self, request: web.Request) -> web.Response:
        self.leases.append(await self._verified(request))
        events, self.queued = self.queued, []
        if not events:
            await asyncio.sleep(0.05)  # a short long-poll
        return web.Response(body=dump_json({"events": events, "lease_seconds": 30}), content_type="application/json")

    async def ack(self, request: web.Request) -> web.Response:
        body = await self._verified(request)
        self.acks.append([dict(r) for r in parse_results(body)])
        self.acked.set()
        return web.json_response({"ok": True})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "s.sqlite3")
    yield opened
    await opened.close()


def pull_config(tmp_path: Path, url: str) -> Any:
    text = config_text().replace('mode = "push"', f'mode = "pull"\npull_url = "{url}"\nbackoff_initial_s = 0.01')
    return load_config(write_config(tmp_path, text))


async def pull_client(tmp_path: Path, url: str, store: SqliteStore, sleeps: list[float] | None = None) -> Any:
    config = pull_config(tmp_path, url)
    dispatcher = Dispatcher(SidecarMetrics())
    register_builtin_handlers(dispatcher)
    session = aiohttp.ClientSession()

    async def record(delay: float) -> None:
        if sleeps is not None:
            sleeps.append(delay)
        await asyncio.sleep(0)

    client = PullClient(session, config.relay, dispatcher, store, SidecarMetrics(), sleep=record)
    return client, session


async def test_poll_once_processes_leased_events_and_acks_them(tmp_path: Path, store: SqliteStore) -> None:
    gateway = FakeGateway(queued=[event(when="1"), event(when="2")])
    async with TestServer(gateway.app()) as server:
        client, session = await pull_client(tmp_path, str(server.make_url("")).rstrip("/"), store)
        async with session:
            assert await client.poll_once() == 2
    assert gateway.leases == [{"max": 100, "wait": 25}]
    assert [r["status"] for r in gateway.acks[0]] == ["accepted", "accepted"]
    assert gateway.rejected == 0


async def test_poll_once_with_empty_lease_sends_no_ack(tmp_path: Path, store: SqliteStore) -> None:
    gateway = FakeGateway()
    async with TestServer(gateway.app()) as server:
        client, session = await pull_client(tmp_path, str(server.make_url("")).rstrip("/"), store)
        async with session:
            assert await client.poll_once() == 0
    assert gateway.acks == []


async def test_released_event_is_acked_again_as_duplicate(tmp_path: Path, store: SqliteStore) -> None:
    sent = event("unsubscribe")
    gateway = FakeGateway(queued=[sent])
    async with TestServer(gateway.app()) as server:
        client, session = await pull_client(tmp_path, str(server.make_url("")).rstrip("/"), store)
        async with session:
            await client.poll_once()
            gateway.queued = [sent]  # the first ack was lost; the lease expired
            await client.poll_once()
    assert [a[0]["status"] for a in gateway.acks] == ["accepted", "duplicate"]


async def test_unreachable_gateway_is_a_pull_error(tmp_path: Path, store: SqliteStore) -> None:
    client, session = await pull_client(tmp_path, f"http://127.0.0.1:{free_port()}", store)
    async with session:
        with pytest.raises(PullError, match="lease"):
            await client.poll_once()


async def test_gateway_refusing_signature_is_a_pull_error(tmp_path: Path, store: SqliteStore) -> None:
    gateway = FakeGateway()
    gateway.verifier = RelayVerifier(["whsec_" + "A" * 32])
    async with TestServer(gateway.app()) as server:
        client, session = await pull_client(tmp_path, str(server.make_url("")).rstrip("/"), store)
        async with session:
            with pytest.raises(PullError, match="HTTP 401"):
                await client.poll_once()


async def test_run_backs_off_exponentially_while_the_gateway_is_down(tmp_path: Path, store: SqliteStore) -> None:
    sleeps: list[float] = []
    client, session = await pull_client(tmp_path, f"http://127.0.0.1:{free_port()}", store, sleeps)
    async with session:
        task = asyncio.get_running_loop().create_task(client.run())
        for _ in range(500):
            if len(sleeps) >= 5:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(sleeps) >= 5
    assert sleeps[4] > sleeps[0]  # growing (jitter keeps each within [0.5, 1] x base)
    assert all(d <= 30.0 for d in sleeps)


async def test_app_in_pull_mode_leases_processes_and_acks(aiohttp_client: Any, tmp_path: Path) -> None:
    gateway = FakeGateway(queued=[event("unsubscribe", openid="oDave0001")])
    async with TestServer(gateway.app()) as server:
        config = pull_config(tmp_path, str(server.make_url("")).rstrip("/"))
        app = create_app(config)
        client = await aiohttp_client(app)
        await asyncio.wait_for(gateway.acked.wait(), timeout=10)
        record = await client.app[STORE].inbox.get(gateway.acks[0][0]["id"])
        assert record is not None and record.processed_at is not None
        await client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
