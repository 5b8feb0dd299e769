"""Residual risks, pinned down: what the design deliberately does not prevent (docs/SECURITY.md).

Each test states a weakness as behaviour, with its bound. If one starts failing, a mitigation
was added: update the residual-risk section of docs/SECURITY.md with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import contract
from common.config import Secret
from gateway.config import load_config
from sidecar.bk.callers import CallerAuth, signature
from sidecar.config import ClientConfig
from sidecar.errors import AuthError
from tests.gateway.conftest import (
    ACCOUNTS,
    MP_APP_ID,
    MP_KEY,
    MP_TOKEN,
    NOW,
    PLAIN_TOKEN,
    FakeClock,
    HealthyRelay,
    fake_app,
)
from tests.gateway.helpers import CallbackBuilder, FakeSpool, text_message, write_config

AppClient = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[AppClient]]
PLAIN = CallbackBuilder(PLAIN_TOKEN, None, "wxplain0000000000", now=NOW)
PLAIN_URL = "/wechat/plain/callback"


async def test_plaintext_signature_replayed_with_another_body_is_accepted_inside_the_window_only(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Plaintext mode: ``signature`` covers Token, timestamp and nonce, not the body. Whoever saw one
    callback's query can pair it with any body for ``max_clock_skew`` seconds; then it is refused."""
    clock, spool = FakeClock(), FakeSpool()
    config = load_config(write_config(tmp_path, ACCOUNTS))
    gateway = await aiohttp_client(fake_app(config, spool, HealthyRelay(), clock))
    query, body = PLAIN.mp_plain(text_message("genuine"))
    forged = PLAIN.mp_plain(text_message("forged by whoever saw the query"))[1]

    assert (await gateway.post(PLAIN_URL, params=query, data=body)).status == 200
    assert (await gateway.post(PLAIN_URL, params=query, data=forged)).status == 200
    assert sorted(e["message"]["Content"] for e in spool.events.values()) == [
        "forged by whoever saw the query",
        "genuine",
    ]
    clock.now += 301
    late = PLAIN.mp_plain(text_message("too late"))[1]
    assert (await gateway.post(PLAIN_URL, params=query, data=late)).status == 403
    assert len(spool.events) == 2


async def test_safe_mode_query_replayed_as_plaintext_is_refused_only_with_require_encryption(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """An encrypted MP callback's query carries ``signature`` too. Stripped of ``encrypt_type`` and
    ``msg_signature`` it reads as a plaintext callback with any body: accepted by an account that
    allows plaintext (``require_encryption = false``, the default, for migrations), refused by one
    that does not. The freshness window bounds it as in plaintext mode."""
    clock, spool = FakeClock(), FakeSpool()
    config = load_config(write_config(tmp_path, ACCOUNTS))
    gateway = await aiohttp_client(fake_app(config, spool, HealthyRelay(), clock))
    owner = CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=NOW)
    query, _ = owner.mp_safe(text_message("genuine, encrypted"))
    downgraded = {k: v for k, v in query.items() if k not in ("encrypt_type", "msg_signature")}
    forged = PLAIN.mp_plain(text_message("forged in plaintext"))[1]

    assert (await gateway.post("/wechat/strict/callback", params=downgraded, data=forged)).status == 403
    assert spool.events == {}
    assert (await gateway.post("/wechat/main/callback", params=downgraded, data=forged)).status == 200
    assert [e["message"]["Content"] for e in spool.events.values()] == ["forged in plaintext"]


def test_relay_replay_cache_is_per_process() -> None:
    """Each verifier (one per process) remembers the webhook-ids it accepted; a replica that did
    not see a request accepts its replay once, inside the 300 s window, and never after it."""
    clock = FakeClock()
    secret = contract.generate_secret()
    body = contract.dump_json({"events": []})
    headers = contract.RelaySigner([secret], clock=clock).headers(body)
    first, second = contract.RelayVerifier([secret], clock=clock), contract.RelayVerifier([secret], clock=clock)

    first.verify(body, headers)
    second.verify(body, headers)  # the residual risk: another replica accepts the replay
    for replica in (first, second):
        with pytest.raises(contract.SignatureError, match="replay"):
            replica.verify(body, headers)
    clock.now += 301
    with pytest.raises(contract.SignatureError, match="window"):
        contract.RelayVerifier([secret], clock=clock).verify(body, headers)


def test_bk_signature_nonce_cache_is_per_process() -> None:
    """BlueKing's ``bk_nonce`` is remembered per process, like the relay's webhook-id."""
    clock = FakeClock()
    client = ClientConfig("bk_paas", Secret("client-secret"))
    query = {"bk_app_code": "bk_paas", "bk_nonce": "12345", "bk_timestamp": str(int(clock.now))}
    query["bk_signature"] = signature("client-secret", "GET", "/api/c/compapi/weixin/get_token/", query)
    replicas = [CallerAuth([client], clock=clock), CallerAuth([client], clock=clock)]

    def call(auth: CallerAuth) -> str:
        try:
            auth.authenticate(query, method="GET", path="/api/c/compapi/weixin/get_token/", query=query)
        except AuthError as exc:
            return str(exc)
        return "accepted"

    assert [call(r) for r in replicas] == ["accepted", "accepted"]
    assert ["replay" in call(r) for r in replicas] == [True, True]
