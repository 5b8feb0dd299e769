"""The assembled gateway (create_app with the real SQLite spool and push relay) against a fake sidecar.

These drive the whole path a WeChat callback takes: verify, decrypt, commit, relay (signed,
Standard Webhooks), acknowledgement with a reply, passive reply, and the operational endpoints.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import contract
from gateway.app import SPOOL_STORE, create_app
from gateway.config import GatewayConfig, load_config
from gateway.keys import METRICS, RELAY
from tests.gateway.conftest import ACCOUNTS, FakeClock, HealthyRelay, fake_app
from tests.gateway.helpers import CallbackBuilder, FakeSpool, text_message, write_config

SECRET = contract.generate_secret()
MP_URL = "/wechat/main/callback"
AppClient = TestClient[web.Request, web.Application]


class Sidecar:
    """Verifies each push like the real sidecar, records the events, answers with scripted replies."""

    def __init__(self, clock: FakeClock) -> None:
        self.verifier = contract.RelayVerifier([SECRET], clock=clock)  # the gateway signs on its clock
        self.received: list[contract.Envelope] = []
        self.reply: contract.Reply | None = None
        self.delay_s = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(contract.PUSH_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.verifier.verify(body, request.headers)
        events = contract.parse_events(contract.load_json(body))
        self.received.extend(events)
        await asyncio.sleep(self.delay_s)
        return web.json_response(
            {"results": [{"id": e["id"], "status": "accepted", "reply": self.reply} for e in events]}
        )


@pytest.fixture
async def sidecar(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], clock: FakeClock
) -> AsyncIterator[Sidecar]:
    fake = Sidecar(clock)
    server = await aiohttp_server(fake.app())
    fake.port = server.port  # type: ignore[attr-defined]
    yield fake


def relay_text(port: int, extra: str = "") -> str:
    return (
        f'[relay]\nmode = "push"\npush_url = "http://127.0.0.1:{port}{contract.PUSH_PATH}"\n'
        f'secrets = ["{SECRET}"]\nbackoff_initial_s = 0.05\nbackoff_max_s = 0.2\n{extra}'
    )


@pytest.fixture
def app_config(tmp_path: Path, sidecar: Sidecar) -> GatewayConfig:
    return load_config(write_config(tmp_path, ACCOUNTS, relay=relay_text(sidecar.port)))  # type: ignore[attr-defined]


@pytest.fixture
async def gateway(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]], app_config: GatewayConfig, clock: FakeClock
) -> AppClient:
    return await aiohttp_client(create_app(app_config, clock=clock))


async def eventually(check: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- the whole path ------------------------------------------------------------------------


def test_create_app_opens_nothing(app_config: GatewayConfig) -> None:
    create_app(app_config)
    assert not app_config.spool.path.exists()


async def test_app_safe_callback_is_relayed_signed_and_replied_encrypted(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder
) -> None:
    sidecar.reply = contract.text_reply("绑定成功 ]]> ok")
    fields = text_message("bind me", from_user="o_carol")
    query, body = mp.mp_safe(fields)
    resp = await gateway.post(MP_URL, params=query, data=body)
    assert resp.status == 200
    reply = mp.open_reply(await resp.text())
    assert (reply["ToUserName"], reply["Content"]) == ("o_carol", "绑定成功 ]]> ok")
    [event] = sidecar.received
    assert (event["account"], event["kind"], event["mode"], event["message"]) == ("main", "mp", "safe", fields)
    assert event["id"] == contract.event_id("main", fields)


async def test_app_plain_compat_and_wecom_are_relayed_with_their_mode(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder, plain_mp: CallbackBuilder, wecom: CallbackBuilder
) -> None:
    requests = [
        ("/wechat/plain/callback", plain_mp.mp_plain(text_message("p"))),
        (MP_URL, mp.mp_compat(text_message("c"))),
        ("/wechat/corp/callback", wecom.wecom_post(text_message("w", to_user=wecom.app_id))),
    ]
    for url, (query, body) in requests:
        resp = await gateway.post(url, params=query, data=body)
        assert (resp.status, await resp.text()) == (200, "success")
    await eventually(lambda: len(sidecar.received) == 3)
    modes = {(e["account"], e["kind"], e["mode"], e["message"]["Content"]) for e in sidecar.received}
    assert modes == {("plain", "mp", "plain", "p"), ("main", "mp", "compat", "c"), ("corp", "wecom", "safe", "w")}


async def test_app_reply_after_the_budget_answers_success_and_is_counted_late(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder
) -> None:
    sidecar.reply, sidecar.delay_s = contract.text_reply("too late"), 0.6
    query, body = mp.mp_safe(text_message())
    resp = await gateway.post(MP_URL, params=query, data=body)
    assert (resp.status, await resp.text()) == (200, "success")

    async def late() -> float:
        text = await (await gateway.get("/metrics")).text()
        return metric(text, 'wxgw_passive_replies_total{account="main",outcome="late"}')

    async with asyncio.timeout(3):
        while await late() < 1:
            await asyncio.sleep(0.05)


async def test_app_same_request_four_times_spools_one_event_and_answers_four_times(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder
) -> None:
    sidecar.reply = contract.text_reply("once")
    query, body = mp.mp_safe(text_message())
    responses = await asyncio.gather(*(gateway.post(MP_URL, params=query, data=body) for _ in range(4)))
    contents = [mp.open_reply(await r.text())["Content"] for r in responses]
    assert contents == ["once"] * 4
    await asyncio.sleep(0.1)
    assert len(sidecar.received) == 1
    assert gateway.app[SPOOL_STORE].stats().depth == 0


async def test_app_event_is_durable_before_the_answer(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder
) -> None:
    sidecar.delay_s = 0.8  # the sidecar hangs past the reply budget: the answer must not wait for it
    fields = text_message("durable")
    query, body = mp.mp_safe(fields)
    resp = await gateway.post(MP_URL, params=query, data=body)
    assert resp.status == 200
    assert await gateway.app[SPOOL_STORE].contains(contract.event_id("main", fields))


async def test_app_pull_mode_sidecar_leases_acks_and_its_reply_is_the_passive_reply(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
    tmp_path: Path,
    clock: FakeClock,
    mp: CallbackBuilder,
) -> None:
    pull = f'[relay]\nmode = "pull"\npull_listen = "127.0.0.1:0"\nsecrets = ["{SECRET}"]\n'
    accounts = ACCOUNTS.replace("reply_budget = 0.3", "reply_budget = 2.0")
    config = load_config(write_config(tmp_path, accounts, relay=pull))
    gateway = await aiohttp_client(create_app(config, clock=clock))
    host, port = gateway.app[RELAY].listen_address  # type: ignore[attr-defined]
    signer = contract.RelaySigner([SECRET], clock=clock)
    fields = text_message("via pull", from_user="o_dave")
    query, body = mp.mp_safe(fields)

    async def sidecar_round() -> None:
        async with aiohttp.ClientSession() as session:
            lease = contract.dump_json({"max": 10, "wait": 2})
            async with session.post(f"http://{host}:{port}{contract.LEASE_PATH}", data=lease,
                                    headers=signer.headers(lease)) as resp:
                [event] = contract.parse_events(await resp.json())
            assert (event["mode"], event["message"]) == ("safe", fields)
            ack = contract.dump_json(
                {"results": [{"id": event["id"], "status": "accepted", "reply": contract.text_reply("pulled")}]}
            )
            async with session.post(f"http://{host}:{port}{contract.ACK_PATH}", data=ack,
                                    headers=signer.headers(ack)) as resp:
                assert resp.status == 200

    sidecar_task = asyncio.create_task(sidecar_round())
    resp = await gateway.post(MP_URL, params=query, data=body)
    await sidecar_task
    assert resp.status == 200
    reply = mp.open_reply(await resp.text())
    assert (reply["ToUserName"], reply["Content"]) == ("o_dave", "pulled")


# --- operational endpoints -----------------------------------------------------------------


async def test_healthz_answers_ok(gateway: AppClient) -> None:
    resp = await gateway.get("/healthz")
    assert (resp.status, await resp.text()) == (200, "ok")


async def test_readyz_with_writable_spool_and_relay_keeping_up_is_ready(gateway: AppClient) -> None:
    resp = await gateway.get("/readyz")
    assert (resp.status, await resp.text()) == (200, "ready")


async def test_readyz_relay_lagging_is_503_with_reason(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
    tmp_path: Path,
    clock: FakeClock,
    mp: CallbackBuilder,
) -> None:
    dead = relay_text(9, "ready_max_lag_s = 5\n")  # port 9 (discard): the sidecar is down
    client = await aiohttp_client(create_app(load_config(write_config(tmp_path, ACCOUNTS, relay=dead)), clock=clock))
    query, body = mp.mp_safe(text_message())
    assert (await client.post(MP_URL, params=query, data=body)).status == 200
    clock.now += 60
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "60 s" in await resp.text()


async def test_readyz_spool_not_writable_is_503(client: AppClient, spool: FakeSpool) -> None:
    spool.fail = True
    resp = await client.get("/readyz")
    assert (resp.status, await resp.text()) == (503, "spool is not writable")


async def test_readyz_relay_unhealthy_is_503(client: AppClient, relay: HealthyRelay) -> None:
    relay.state = (False, "push worker stopped")
    resp = await client.get("/readyz")
    assert (resp.status, await resp.text()) == (503, "relay unhealthy: push worker stopped")


async def test_metrics_count_callbacks_by_account_mode_and_outcome(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder
) -> None:
    query, body = mp.mp_safe(text_message())
    for _ in range(2):
        await gateway.post(MP_URL, params=query, data=body)
    bad = dict(query, msg_signature="0" * 40)
    await gateway.post(MP_URL, params=bad, data=body)
    await gateway.get(MP_URL, params=mp.mp_verify("1"))
    resp = await gateway.get("/metrics")
    assert resp.content_type == "text/plain"
    text = await resp.text()
    labels = 'wxgw_callbacks_total{account="main",mode="%s",outcome="%s"}'
    assert metric(text, labels % ("safe", "accepted")) == 1
    assert metric(text, labels % ("safe", "duplicate")) == 1
    assert metric(text, labels % ("safe", "bad_signature")) == 1
    assert metric(text, labels % ("verify", "verified")) == 1
    assert "wxgw_spool_depth " in text
    assert "wxgw_oldest_unacked_age_seconds " in text


async def test_metrics_time_each_callback_by_account_and_mode(
    gateway: AppClient, sidecar: Sidecar, mp: CallbackBuilder
) -> None:
    query, body = mp.mp_safe(text_message())
    await gateway.post(MP_URL, params=query, data=body)
    await gateway.get(MP_URL, params=mp.mp_verify("1"))
    text = await (await gateway.get("/metrics")).text()
    assert metric(text, 'wxgw_callback_seconds_count{account="main",mode="safe"}') == 1
    assert metric(text, 'wxgw_callback_seconds_count{account="main",mode="verify"}') == 1
    assert metric(text, 'wxgw_callback_seconds_bucket{account="main",le="5.0",mode="safe"}') == 1


async def test_metrics_ready_gauge_is_one_when_ready(client: AppClient) -> None:
    text = await (await client.get("/metrics")).text()
    assert "\nwxgw_ready 1.0\n" in text


async def test_metrics_ready_gauge_is_zero_when_spool_not_writable_without_a_readyz_call(
    client: AppClient, spool: FakeSpool
) -> None:
    assert "\nwxgw_ready 1.0\n" in await (await client.get("/metrics")).text()
    spool.fail = True
    assert "\nwxgw_ready 0.0\n" in await (await client.get("/metrics")).text()


async def test_readyz_failing_sets_the_ready_gauge_to_zero(client: AppClient, relay: HealthyRelay) -> None:
    relay.state = (False, "push worker stopped")
    assert (await client.get("/readyz")).status == 503
    assert client.app[METRICS].registry.get_sample_value("wxgw_ready") == 0


async def test_metrics_never_show_tokens_or_keys(gateway: AppClient, mp: CallbackBuilder) -> None:
    query, body = mp.mp_safe(text_message())
    await gateway.post(MP_URL, params=query, data=body)
    text = await (await gateway.get("/metrics")).text()
    assert mp.token not in text and str(mp.encoding_aes_key) not in text


# --- the edge: request ids, logs, bugs -----------------------------------------------------


async def test_edge_passes_a_sane_incoming_request_id_through(client: AppClient) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "0123456789abcdef0123456789abcdef"})
    assert resp.headers["X-Request-Id"] == "0123456789abcdef0123456789abcdef"


async def test_edge_replaces_an_insane_request_id(client: AppClient) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith junk"})
    assert resp.headers["X-Request-Id"] != "bad id\twith junk"
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_edge_bug_in_our_code_is_503_without_traceback(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
    config: GatewayConfig,
    relay: HealthyRelay,
    clock: FakeClock,
    mp: CallbackBuilder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenSpool(FakeSpool):
        async def commit(self, envelope: contract.Envelope) -> bool:
            raise RuntimeError("bug: secret internals")

    client = await aiohttp_client(fake_app(config, BrokenSpool(), relay, clock))
    query, body = mp.mp_safe(text_message())
    resp = await client.post(MP_URL, params=query, data=body)
    text = await resp.text()
    assert (resp.status, text) == (503, "internal error; retry later")
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


async def test_edge_refusal_is_logged_once_with_its_reason(
    client: AppClient, mp: CallbackBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = mp.mp_safe(text_message())
    query["msg_signature"] = "0" * 40
    with caplog.at_level(logging.INFO):
        await client.post(MP_URL, params=query, data=body)
    refusals = [r for r in caplog.records if r.getMessage() == "request refused"]
    assert len(refusals) == 1
    record: Any = refusals[0]
    assert (record.status, record.reason) == (403, "msg_signature does not match")


async def test_edge_logs_shortened_openids_and_no_secrets(
    client: AppClient, mp: CallbackBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    openid = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    query, body = mp.mp_safe(text_message(from_user=openid))
    with caplog.at_level(logging.DEBUG):
        await client.post(MP_URL, params=query, data=body)
    # aiohttp.access is the test server's access log; the gateway runs with access_log=None.
    logged = " ".join(str(vars(r)) for r in caplog.records if r.name != "aiohttp.access")
    assert "oyOR…f0rs" in logged
    assert openid not in logged
    assert mp.token not in logged and str(mp.encoding_aes_key) not in logged


async def test_edge_unknown_route_is_404(client: AppClient) -> None:
    assert (await client.get("/wechat/main/other")).status == 404


def test_create_app_fake_spool_without_a_relay_is_refused(config: GatewayConfig) -> None:
    with pytest.raises(TypeError, match="pass a relay along with this spool"):
        create_app(config, spool=FakeSpool())
