"""No answer a peer sends can make the sidecar hold more than the answer cap in memory.

The reviewer's input (issue 10, finding 4): a fake gateway answered one signed lease with
768 MiB and the intranet sidecar grew to 1.5 GiB. Here a real local server streams 768 MiB
(generated lazily, one reused 1 MiB block) to each outbound client of the sidecar; the peak of
Python allocations (tracemalloc) must stay near the 1 MiB cap. The lease answer is refused,
logged and retried with backoff, and the event the gateway still holds arrives on the next lease.
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from common.answers import MAX_ANSWER_BYTES
from contract import RelayVerifier, dump_json, load_json, parse_results
from sidecar.binding import identity
from sidecar.binding.errors import LoginUnavailable
from sidecar.config import load_config
from sidecar.errors import WeChatUnavailable
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher, register_builtin_handlers
from sidecar.relay.transport import PullClient
from sidecar.store import SqliteStore, open_sqlite_store
from sidecar.wechat.api import WeChatApi
from tests.sidecar.helpers import RELAY_SECRET, config_text, write_config
from tests.sidecar.relayhelp import event

HUGE_BYTES = 768 * 1024 * 1024  # the reviewer's answer
BLOCK = b"x" * (1024 * 1024)
PEAK_BOUND_BYTES = 16 * 1024 * 1024  # the cap, a chunk, the parser's buffers, the test's own objects

async def stream_huge(request: web.Request, *, declare_length: bool) -> web.StreamResponse:
    """768 MiB of answer, chunked or with its Content-Length, until the client hangs up."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if declare_length:
        response.content_length = HUGE_BYTES
    await response.prepare(request)
    try:
        for _ in range(HUGE_BYTES // len(BLOCK)):
            await response.write(BLOCK)
    except (ConnectionError, aiohttp.ClientConnectionResetError):
        pass  # the client refused the rest: what we want
    return response


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "store.sqlite3")
    yield opened
    await opened.close()


async def peak_while(work: Awaitable[object]) -> int:
    """Peak traced allocation (bytes) while ``work`` runs."""
    tracemalloc.start()
    try:
        await work
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class HugeThenRealGateway:
    """A compromised gateway: the first signed lease gets 768 MiB, the next one a real event."""

    def __init__(self, *, declare_length: bool) -> None:
        self.declare_length = declare_length
        self.verifier = RelayVerifier([RELAY_SECRET])
        self.leases = 0
        self.acked: list[str] = []
        self.done = asyncio.Event()
        self.sent = event("unsubscribe", openid="oHugeAnswer01")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/relay/v1/lease", self.lease)
        app.router.add_post("/relay/v1/ack", self.ack)
        return app

    async def lease(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.verifier.verify(body, request.headers)
        self.leases += 1
        if self.leases == 1:
            return await stream_huge(request, declare_length=self.declare_length)
        events = [self.sent] if not self.acked else []
        return web.Response(body=dump_json({"events": events, "lease_seconds": 30}), content_type="application/json")

    async def ack(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.verifier.verify(body, request.headers)
        self.acked.extend(r["id"] for r in parse_results(load_json(body)))
        self.done.set()
        return web.json_response({"ok": True})


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content_length"])
async def test_pull_client_lease_answer_of_768_mib_is_refused_bounded_and_the_event_still_arrives(
    declare_length: bool, tmp_path: Path, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = HugeThenRealGateway(declare_length=declare_length)
    async with TestServer(gateway.app()) as server:
        url = str(server.make_url("")).rstrip("/")
        relay = f'mode = "pull"\npull_url = "{url}"\nbackoff_initial_s = 0.01\nlease_wait_s = 0'
        config = load_config(write_config(tmp_path, config_text().replace('mode = "push"', relay)))
        dispatcher = Dispatcher(SidecarMetrics())
        register_builtin_handlers(dispatcher)
        async with aiohttp.ClientSession(trust_env=False) as session:
            client = PullClient(session, config.relay, dispatcher, store, SidecarMetrics())
            task = asyncio.get_running_loop().create_task(client.run())
            with caplog.at_level(logging.WARNING, logger="sidecar.relay.transport"):
                peak = await peak_while(asyncio.wait_for(gateway.done.wait(), timeout=30))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert peak < PEAK_BOUND_BYTES
    assert gateway.acked == [gateway.sent["id"]]
    record = await store.inbox.get(gateway.sent["id"])
    assert record is not None and record.processed_at is not None
    refusals = [r for r in caplog.records if r.getMessage() == "relay pull failed"]
    assert refusals and f"answer larger than {MAX_ANSWER_BYTES} bytes" in str(refusals[0].__dict__["reason"])


async def serve_huge(declare_length: bool) -> TestServer:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_huge(request, declare_length=declare_length)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_wechat_client_answer_of_768_mib_is_unavailable_and_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = await serve_huge(declare_length=False)
    try:
        base = str(server.make_url("")).rstrip("/")
        config = load_config(write_config(tmp_path, replace={"wechat": f'[wechat]\nmp_api = "{base}"\n'}))
        async with aiohttp.ClientSession(trust_env=False) as session:
            api = WeChatApi(session, config.wechat, SidecarMetrics())
            peak = await peak_while(_refused(api.template_send("TOKEN", {"touser": "o"}), WeChatUnavailable))
    finally:
        await server.close()
    assert peak < PEAK_BOUND_BYTES


async def test_bk_login_answer_of_768_mib_is_unavailable_and_stays_bounded() -> None:
    server = await serve_huge(declare_length=False)
    try:
        url = str(server.make_url("/login/accounts/is_login/"))
        async with aiohttp.ClientSession(trust_env=False) as session:
            login = identity.BkLogin(url, session)
            peak = await peak_while(_refused(login.username("a-bk-token"), LoginUnavailable))
    finally:
        await server.close()
    assert peak < PEAK_BOUND_BYTES


async def _refused(call: Awaitable[object], expected: type[Exception]) -> None:
    with pytest.raises(expected, match=f"answer larger than {MAX_ANSWER_BYTES} bytes"):
        await call
