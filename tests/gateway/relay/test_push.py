"""Push mode against a fake sidecar that checks every request the way the real one must."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import contract
from common.config import Secret
from gateway.config import GatewayConfig, RelayConfig, ServerConfig, SpoolConfig
from gateway.metrics import GatewayMetrics
from gateway.relay.service import RelayService, relay_service
from gateway.spool.queue import Leased, Spool
from tests.gateway.spool.test_queue import FakeClock, envelope, sample

SECRET = contract.generate_secret()
ServerFactory = Callable[..., Awaitable[TestServer]]
Answer = Callable[[list[contract.Envelope]], Awaitable[web.Response]]


class FakeSidecar:
    """Verifies signatures like the sidecar, records events, answers from a script, then normally."""

    def __init__(self) -> None:
        self.verifier = contract.RelayVerifier([SECRET])
        self.received: list[contract.Envelope] = []
        self.requests = 0
        self.refused = 0
        self.batch_sizes: list[int] = []
        self.replies: dict[str, contract.Reply] = {}
        self.script: list[Answer] = []
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(contract.PUSH_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            self.verifier.verify(body, request.headers)
        except contract.SignatureError as exc:
            self.refused += 1
            return web.json_response({"error": str(exc)}, status=401)
        events = contract.parse_events(contract.load_json(body))
        self.batch_sizes.append(len(events))
        if self.script:
            return await self.script.pop(0)(events)
        self.received.extend(events)
        return web.json_response({"results": [self.result(e) for e in events]})

    def result(self, event: contract.Envelope) -> dict[str, Any]:
        return {"id": event["id"], "status": "accepted", "reply": self.replies.get(event["id"])}

    def ids(self) -> set[str]:
        return {e["id"] for e in self.received}


def status(code: int) -> Answer:
    return answer_with(lambda: web.json_response({"error": "scripted"}, status=code))


def answer_with(make: Callable[[], web.Response]) -> Answer:
    async def answer(events: list[contract.Envelope]) -> web.Response:
        return make()

    return answer


def failures(metrics: GatewayMetrics, reason: str) -> float:
    return sample(metrics, "wxgw_relay_failures_total", {"mode": "push", "reason": reason})


async def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


def relay_config(port: int, **overrides: Any) -> RelayConfig:
    base = RelayConfig(
        mode="push",
        secrets=(Secret(SECRET),),
        push_url=f"http://127.0.0.1:{port}{contract.PUSH_PATH}",
        timeout_s=2.0,
        backoff_initial_s=0.02,
        backoff_max_s=0.1,
    )
    return replace(base, **overrides)


def gateway_config(tmp_path: Path, relay: RelayConfig) -> GatewayConfig:
    spool = SpoolConfig(path=tmp_path / "spool.sqlite3", commit_window_ms=0)
    return GatewayConfig(server=ServerConfig(), spool=spool, relay=relay, accounts=())


@pytest.fixture
def sidecar() -> FakeSidecar:
    return FakeSidecar()


@pytest.fixture
async def server(aiohttp_server: ServerFactory, sidecar: FakeSidecar) -> TestServer:
    return await aiohttp_server(sidecar.app())


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


@pytest.fixture
async def spool(tmp_path: Path, metrics: GatewayMetrics) -> AsyncIterator[Spool]:
    opened = await Spool.open(SpoolConfig(path=tmp_path / "spool.sqlite3", commit_window_ms=0), metrics)
    yield opened
    await opened.close()


@pytest.fixture
async def relay(
    tmp_path: Path, server: TestServer, spool: Spool, metrics: GatewayMetrics
) -> AsyncIterator[RelayService]:
    assert server.port is not None
    async with relay_service(gateway_config(tmp_path, relay_config(server.port)), spool, metrics) as service:
        yield service


async def test_push_delivers_committed_event_signed(
    relay: RelayService, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    await spool.commit(envelope(1))
    await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.received == [envelope(1)]
    assert sidecar.refused == 0
    assert sample(metrics, "wxgw_relayed_events_total", {"mode": "push"}) == 1
    assert sample(metrics, "wxgw_relay_attempts_total", {"mode": "push"}) == 1
    assert relay.healthy() == (True, "push relay ok")


async def test_push_reply_reaches_wait_reply(relay: RelayService, spool: Spool, sidecar: FakeSidecar) -> None:
    sidecar.replies[envelope(1)["id"]] = contract.text_reply("绑定成功")
    await spool.commit(envelope(1))
    assert await spool.wait_reply(envelope(1)["id"], 3.0) == contract.text_reply("绑定成功")


async def test_push_starts_without_waiting_for_a_poll(relay: RelayService, spool: Spool) -> None:
    await spool.commit(envelope(0))
    await eventually(lambda: spool.stats().depth == 0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await spool.commit(envelope(1))
    await eventually(lambda: spool.stats().depth == 0)
    assert loop.time() - started < 0.5


async def test_push_drains_a_backlog_in_bounded_batches(
    tmp_path: Path, server: TestServer, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    await asyncio.gather(*(spool.commit(envelope(n)) for n in range(250)))
    assert server.port is not None
    config = gateway_config(tmp_path, relay_config(server.port, batch_max=40))
    async with relay_service(config, spool, metrics):
        await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.ids() == {envelope(n)["id"] for n in range(250)}
    assert max(sidecar.batch_sizes) <= 40
    assert len(sidecar.batch_sizes) <= 12


async def test_push_backlog_is_sent_by_all_workers_at_once(
    tmp_path: Path, server: TestServer, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    await asyncio.gather(*(spool.commit(envelope(n)) for n in range(200)))
    sidecar.delay_s = 0.2
    assert server.port is not None
    async with relay_service(gateway_config(tmp_path, relay_config(server.port, batch_max=40)), spool, metrics):
        await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.max_in_flight == 4  # WORKERS
    assert len(sidecar.ids()) == 200


async def test_push_a_commit_is_leased_by_one_worker_not_raced_for_by_all(
    relay: RelayService, spool: Spool, sidecar: FakeSidecar
) -> None:
    await spool.commit(envelope(0))
    await eventually(lambda: spool.stats().depth == 0)
    leased: list[int] = []
    lease = spool.lease

    async def counted(max_events: int, lease_s: float) -> list[Leased]:
        batch = await lease(max_events, lease_s)
        leased.append(len(batch))
        return batch

    spool.lease = counted  # type: ignore[method-assign]
    for n in range(1, 4):
        await spool.commit(envelope(n))
        await eventually(lambda: spool.stats().depth == 0)
    assert leased == [1, 1, 1]
    assert len(sidecar.ids()) == 4


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (status(401), "unauthorized"),
        (status(500), "server_error"),
        (status(503), "server_error"),
        (status(404), "http_status"),
        (answer_with(lambda: web.Response(body=b"<html>oops", content_type="text/html")), "malformed_answer"),
        (answer_with(lambda: web.json_response({"results": [{"id": "evt_1", "status": "ok"}]})), "malformed_answer"),
    ],
)
async def test_push_failed_answer_is_retried_until_acknowledged(
    relay: RelayService, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics, answer: Answer, reason: str
) -> None:
    sidecar.script = [answer, answer]
    await spool.commit(envelope(1))
    await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.received == [envelope(1)]
    assert sidecar.requests == 3
    assert failures(metrics, reason) == 2


async def test_push_missing_ids_are_retried_and_the_rest_acknowledged(
    tmp_path: Path, server: TestServer, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    async def only_first(events: list[contract.Envelope]) -> web.Response:
        sidecar.received.append(events[0])
        return web.json_response({"results": [sidecar.result(events[0])]})

    sidecar.script = [only_first]
    for n in range(3):
        await spool.commit(envelope(n))
    assert server.port is not None
    async with relay_service(gateway_config(tmp_path, relay_config(server.port)), spool, metrics):
        await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.batch_sizes[0] == 3
    assert sidecar.ids() == {envelope(n)["id"] for n in range(3)}
    assert failures(metrics, "missing_ids") == 1
    assert sample(metrics, "wxgw_relayed_events_total", {"mode": "push"}) == 3


async def test_push_timeout_is_retried(
    tmp_path: Path, server: TestServer, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    async def too_slow(events: list[contract.Envelope]) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"results": [sidecar.result(e) for e in events]})

    sidecar.script = [too_slow]
    await spool.commit(envelope(1))
    assert server.port is not None
    async with relay_service(gateway_config(tmp_path, relay_config(server.port, timeout_s=0.2)), spool, metrics):
        await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.received == [envelope(1)]
    assert sidecar.requests == 2
    assert failures(metrics, "timeout") == 1


def _app_with(handler: Callable[[web.Request], Awaitable[web.Response]]) -> web.Application:
    app = web.Application()
    app.router.add_post(contract.PUSH_PATH, handler)
    return app


async def test_push_sidecar_down_then_up_delivers_after_it_returns(
    tmp_path: Path,
    aiohttp_server: ServerFactory,
    unused_tcp_port: int,
    spool: Spool,
    sidecar: FakeSidecar,
    metrics: GatewayMetrics,
) -> None:
    config = gateway_config(tmp_path, relay_config(unused_tcp_port))
    async with relay_service(config, spool, metrics) as service:
        await spool.commit(envelope(1))
        await spool.commit(envelope(2))
        await eventually(lambda: failures(metrics, "connection") >= 3)
        assert spool.stats().depth == 2
        running, detail = service.healthy()
        assert running and "retrying" in detail
        await aiohttp_server(sidecar.app(), port=unused_tcp_port)
        await eventually(lambda: spool.stats().depth == 0)
        assert service.healthy() == (True, "push relay ok")
    assert sidecar.ids() == {envelope(1)["id"], envelope(2)["id"]}


async def test_push_backs_off_while_the_sidecar_is_down(
    tmp_path: Path, unused_tcp_port: int, spool: Spool, metrics: GatewayMetrics
) -> None:
    config = gateway_config(tmp_path, relay_config(unused_tcp_port, backoff_initial_s=0.05, backoff_max_s=0.2))
    await spool.commit(envelope(1))
    async with relay_service(config, spool, metrics):
        await asyncio.sleep(0.6)
    # without backoff a refused connection is retried thousands of times in 0.6 s
    assert 2 <= failures(metrics, "connection") <= 40
    assert spool.stats().depth == 1


async def test_push_pending_events_are_relayed_after_a_restart(
    tmp_path: Path, server: TestServer, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    spool_config = SpoolConfig(path=tmp_path / "spool.sqlite3")
    before = await Spool.open(spool_config, metrics)
    for n in range(5):
        await before.commit(envelope(n))
    await before.close()

    after = await Spool.open(spool_config, metrics)
    try:
        assert server.port is not None
        async with relay_service(gateway_config(tmp_path, relay_config(server.port)), after, metrics):
            await eventually(lambda: after.stats().depth == 0)
    finally:
        await after.close()
    assert sidecar.ids() == {envelope(n)["id"] for n in range(5)}


async def test_push_ignores_proxy_environment(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int, relay: RelayService, spool: Spool, sidecar: FakeSidecar
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{unused_tcp_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    await spool.commit(envelope(1))
    await eventually(lambda: spool.stats().depth == 0)
    assert sidecar.received == [envelope(1)]


async def test_push_does_not_follow_redirects(
    tmp_path: Path, aiohttp_server: ServerFactory, spool: Spool, metrics: GatewayMetrics
) -> None:
    elsewhere = FakeSidecar()
    target = await aiohttp_server(elsewhere.app())

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(target.make_url(contract.PUSH_PATH)))

    redirector = await aiohttp_server(_app_with(redirect))
    assert redirector.port is not None
    await spool.commit(envelope(1))
    async with relay_service(gateway_config(tmp_path, relay_config(redirector.port)), spool, metrics):
        await eventually(lambda: failures(metrics, "http_status") >= 2)
    assert elsewhere.requests == 0
    assert spool.stats().depth == 1


async def test_push_with_a_secret_the_sidecar_does_not_know_is_refused_and_kept(
    tmp_path: Path, server: TestServer, spool: Spool, sidecar: FakeSidecar, metrics: GatewayMetrics
) -> None:
    assert server.port is not None
    config = gateway_config(tmp_path, relay_config(server.port, secrets=(Secret(contract.generate_secret()),)))
    await spool.commit(envelope(1))
    async with relay_service(config, spool, metrics):
        await eventually(lambda: sidecar.refused >= 2)
    assert sidecar.received == []
    assert spool.stats().depth == 1
    assert failures(metrics, "unauthorized") >= 2


async def test_relay_service_unhealthy_when_lag_exceeds_limit(
    tmp_path: Path, unused_tcp_port: int, metrics: GatewayMetrics
) -> None:
    clock = FakeClock()
    lagging = await Spool.open(SpoolConfig(path=tmp_path / "spool.sqlite3"), metrics, clock=clock)
    try:
        config = gateway_config(tmp_path, relay_config(unused_tcp_port, ready_max_lag_s=60))
        async with relay_service(config, lagging, metrics) as service:
            await lagging.commit(envelope(1))
            clock.now += 61
            healthy, reason = service.healthy()
            assert not healthy
            assert "61 s old" in reason
    finally:
        await lagging.close()

