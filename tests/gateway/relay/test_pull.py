"""Pull mode: the sidecar leases and acknowledges over HTTP, every request signed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import contract
from common.config import Secret
from gateway.config import GatewayConfig, RelayConfig, ServerConfig, SpoolConfig
from gateway.metrics import GatewayMetrics
from gateway.relay.service import RelayService, relay_service
from gateway.spool.queue import Spool
from tests.gateway.spool.test_queue import FakeClock, envelope, sample

SECRET = contract.generate_secret()
LEASE_S = 30


class Sidecar:
    """Signs requests like the real sidecar's pull loop."""

    def __init__(self, session: aiohttp.ClientSession, base: str, secret: str = SECRET) -> None:
        self.session = session
        self.base = base
        self.signer = contract.RelaySigner([secret])

    async def post(self, path: str, payload: Any, *, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else contract.dump_json(payload)
        sent = self.signer.headers(body) if headers is None else headers
        async with self.session.post(self.base + path, data=body, headers=sent) as response:
            return response.status, await response.json()

    async def lease(self, max_events: int = 100, wait_s: float = 0) -> list[contract.Envelope]:
        status, answer = await self.post(contract.LEASE_PATH, {"max": max_events, "wait": wait_s})
        assert status == 200, answer
        assert answer["lease_seconds"] == LEASE_S
        return contract.parse_events(answer)

    async def ack(self, *event_ids: str, reply: contract.Reply | None = None) -> int:
        results = [{"id": event_id, "status": "accepted", "reply": reply} for event_id in event_ids]
        status, answer = await self.post(contract.ACK_PATH, {"results": results})
        assert status == 200, answer
        return int(answer["acked"])


def gateway_config(tmp_path: Path) -> GatewayConfig:
    relay = RelayConfig(mode="pull", secrets=(Secret(SECRET),), pull_host="127.0.0.1", pull_port=0, lease_s=LEASE_S)
    spool = SpoolConfig(path=tmp_path / "spool.sqlite3", commit_window_ms=0)
    return GatewayConfig(server=ServerConfig(), spool=spool, relay=relay, accounts=())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


@pytest.fixture
async def spool(tmp_path: Path, metrics: GatewayMetrics, clock: FakeClock) -> AsyncIterator[Spool]:
    opened = await Spool.open(gateway_config(tmp_path).spool, metrics, clock=clock)
    yield opened
    await opened.close()


@pytest.fixture
async def relay(tmp_path: Path, spool: Spool, metrics: GatewayMetrics) -> AsyncIterator[RelayService]:
    async with relay_service(gateway_config(tmp_path), spool, metrics) as service:
        yield service


@pytest.fixture
async def sidecar(relay: RelayService) -> AsyncIterator[Sidecar]:
    assert relay.listen_address is not None
    host, port = relay.listen_address
    async with aiohttp.ClientSession() as session:
        yield Sidecar(session, f"http://{host}:{port}")


async def test_pull_lease_returns_ready_events_oldest_first(sidecar: Sidecar, spool: Spool) -> None:
    for n in range(3):
        await spool.commit(envelope(n))
    assert await sidecar.lease() == [envelope(0), envelope(1), envelope(2)]


async def test_pull_lease_hands_out_at_most_max(sidecar: Sidecar, spool: Spool) -> None:
    for n in range(3):
        await spool.commit(envelope(n))
    assert await sidecar.lease(max_events=2) == [envelope(0), envelope(1)]
    assert await sidecar.lease(max_events=2) == [envelope(2)]


async def test_pull_ack_acknowledges_and_delivers_the_reply(
    sidecar: Sidecar, spool: Spool, metrics: GatewayMetrics
) -> None:
    await spool.commit(envelope(1))
    waiter = asyncio.create_task(spool.wait_reply(envelope(1)["id"], 5))
    [event] = await sidecar.lease()
    assert await sidecar.ack(event["id"], reply=contract.text_reply("ok")) == 1
    assert await waiter == contract.text_reply("ok")
    assert spool.stats().depth == 0
    assert sample(metrics, "wxgw_relayed_events_total", {"mode": "pull"}) == 1


async def test_pull_ack_of_an_acknowledged_event_counts_nothing(sidecar: Sidecar, spool: Spool) -> None:
    await spool.commit(envelope(1))
    assert await sidecar.ack(envelope(1)["id"]) == 1
    assert await sidecar.ack(envelope(1)["id"]) == 0


async def test_pull_leased_events_are_reoffered_only_after_the_lease_expires(
    sidecar: Sidecar, spool: Spool, clock: FakeClock
) -> None:
    await spool.commit(envelope(1))
    assert await sidecar.lease() == [envelope(1)]
    clock.now += LEASE_S - 1
    assert await sidecar.lease() == []
    clock.now += 1
    assert await sidecar.lease() == [envelope(1)]


async def test_pull_long_poll_answers_as_soon_as_an_event_is_committed(sidecar: Sidecar, spool: Spool) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(sidecar.lease(wait_s=10))
    await asyncio.sleep(0.1)
    assert not poll.done()
    await spool.commit(envelope(1))
    assert await asyncio.wait_for(poll, 2) == [envelope(1)]
    assert loop.time() - started < 1.0


async def test_pull_long_poll_answers_empty_after_wait(sidecar: Sidecar) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await sidecar.lease(wait_s=0.2) == []
    assert loop.time() - started >= 0.2


async def test_pull_long_poll_ends_promptly_on_shutdown(tmp_path: Path, spool: Spool, metrics: GatewayMetrics) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        async with relay_service(gateway_config(tmp_path), spool, metrics) as service:
            assert service.listen_address is not None
            host, port = service.listen_address
            poll = asyncio.create_task(Sidecar(session, f"http://{host}:{port}").lease(wait_s=25))
            await asyncio.sleep(0.1)
            started = loop.time()
        assert await asyncio.wait_for(poll, 3) == []
        assert loop.time() - started < 2.0


async def test_pull_unsigned_request_is_refused_with_401(sidecar: Sidecar, metrics: GatewayMetrics) -> None:
    status, answer = await sidecar.post(contract.LEASE_PATH, {"max": 1}, headers={"content-type": "application/json"})
    assert status == 401
    assert "missing webhook-id" in answer["error"]
    assert sample(metrics, "wxgw_relay_failures_total", {"mode": "pull", "reason": "unauthorized"}) == 1


async def test_pull_replayed_request_is_refused_with_401(sidecar: Sidecar, spool: Spool) -> None:
    body = contract.dump_json({"results": []})
    headers = sidecar.signer.headers(body)
    assert (await sidecar.post(contract.ACK_PATH, body, headers=headers))[0] == 200
    status, answer = await sidecar.post(contract.ACK_PATH, body, headers=headers)
    assert status == 401
    assert "replay" in answer["error"]


async def test_pull_tampered_body_is_refused_with_401(sidecar: Sidecar, spool: Spool) -> None:
    await spool.commit(envelope(1))
    signed = contract.dump_json({"results": []})
    tampered = contract.dump_json({"results": [{"id": envelope(1)["id"], "status": "accepted", "reply": None}]})
    status, answer = await sidecar.post(contract.ACK_PATH, tampered, headers=sidecar.signer.headers(signed))
    assert status == 401
    assert answer == {"error": "no matching signature"}
    assert spool.stats().depth == 1


async def test_pull_request_signed_with_another_secret_is_refused_with_401(relay: RelayService, spool: Spool) -> None:
    assert relay.listen_address is not None
    host, port = relay.listen_address
    await spool.commit(envelope(1))
    async with aiohttp.ClientSession() as session:
        stranger = Sidecar(session, f"http://{host}:{port}", secret=contract.generate_secret())
        status, _ = await stranger.post(contract.LEASE_PATH, {"max": 1, "wait": 0})
    assert status == 401
    assert spool.stats().depth == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not UTF-8 JSON"),
        (b"[1, 2]", "must be an object"),
        (b'{"max": 0, "wait": 0}', "'max' must be an integer from 1 to 100"),
        (b'{"max": 101}', "'max' must be an integer"),
        (b'{"max": true}', "'max' must be an integer"),
        (b'{"max": 10, "wait": 26}', "'wait' must be a number of seconds from 0 to 25"),
        (b'{"max": 10, "wait": "5"}', "'wait' must be a number"),
        (b'{"max": 10, "wait": NaN}', "'wait' must be a number"),
    ],
)
async def test_pull_malformed_lease_body_is_refused_with_400(sidecar: Sidecar, body: bytes, reason: str) -> None:
    status, answer = await sidecar.post(contract.LEASE_PATH, body)
    assert status == 400
    assert reason in answer["error"]


@pytest.mark.parametrize(
    "payload",
    [{"acks": []}, {"results": [{"id": "evt_x", "status": "accepted"}]}, {"results": [{"status": "accepted"}]}],
)
async def test_pull_malformed_ack_body_is_refused_with_400(sidecar: Sidecar, payload: Any) -> None:
    status, answer = await sidecar.post(contract.ACK_PATH, payload)
    assert status == 400
    assert answer["error"]


async def test_pull_listener_has_no_other_route(sidecar: Sidecar) -> None:
    status, answer = await sidecar.post("/relay/v1/events", {"events": []})
    assert (status, answer) == (404, {"error": "Not Found"})
    async with sidecar.session.get(sidecar.base + contract.LEASE_PATH) as response:
        assert response.status == 405
        assert (await response.json())["error"] == "Method Not Allowed"


async def test_pull_relay_service_is_healthy_while_listening(relay: RelayService) -> None:
    assert relay.healthy() == (True, "pull relay listening")
