"""GET /api/c/compapi/weixin/get_token/ and the refresh-now call, with BlueKing caller auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aioresponses import aioresponses

from sidecar.app import create_app
from sidecar.bk.callers import signature
from sidecar.config import load_config
from tests.sidecar.fakewechat import FakeWeChat
from tests.sidecar.helpers import CLIENT_SECRET, write_config

PATH = "/api/c/compapi/weixin/get_token/"
READER = '\n[[clients]]\napp_code = "reader"\napp_secret = "reader-secret"\nmay_get_token = true\n'
OUTSIDER = '\n[[clients]]\napp_code = "outsider"\napp_secret = "outsider-secret"\n'


@pytest.fixture
async def rig(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[tuple[TestClient, FakeWeChat]]:
    config = load_config(write_config(tmp_path, extra=READER + OUTSIDER))
    client: TestClient = await aiohttp_client(create_app(config))
    with aioresponses(passthrough=[str(client.make_url("/"))]) as mocked:
        yield client, FakeWeChat(mocked)


async def envelope(response: Any) -> dict[str, Any]:
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    assert set(body) == {"result", "code", "message", "data", "request_id"}
    assert len(body["request_id"]) == 32
    return body


def bk_signature(secret: str, method: str, path: str, params: dict[str, str], body: str = "") -> str:
    """Written from BlueKing's SDK get_signature, independently of sidecar.bk.callers."""
    kwargs = dict(params)
    if body:
        kwargs["data"] = body
    original = "%s%s?%s" % (method, path, "&".join("%s=%s" % (k, v) for k, v in sorted(kwargs.items())))  # noqa: UP031
    return base64.b64encode(hmac.new(secret.encode(), original.encode(), hashlib.sha1).digest()).decode()


def signed_query(secret: str = CLIENT_SECRET, *, method: str = "GET", body: str = "", **extra: str) -> dict[str, str]:
    params = {"bk_app_code": "bk_paas", "bk_nonce": str(time.time_ns()), "bk_timestamp": str(int(time.time())), **extra}
    params["bk_signature"] = bk_signature(secret, method, PATH, params, body)
    return params


# answers ----------------------------------------------------------------------------------------


async def test_get_token_with_app_code_and_secret_returns_token(rig: Any) -> None:
    client, wechat = rig
    body = await envelope(await client.get(PATH, params={"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}))
    assert body["result"] is True and body["code"] == 0
    assert body["data"]["access_token"] in wechat.valid_tokens
    assert 7100 <= body["data"]["expires_in"] <= 7200


async def test_get_token_twice_fetches_from_wechat_once(rig: Any) -> None:
    client, wechat = rig
    for _ in range(2):
        await client.get(PATH, params={"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET})
    assert wechat.token_fetches() == 1


async def test_get_token_with_legacy_app_code_names(rig: Any) -> None:
    client, _ = rig
    body = await envelope(await client.get(PATH, params={"app_code": "bk_paas", "app_secret": CLIENT_SECRET}))
    assert body["result"] is True


async def test_get_token_as_json_post(rig: Any) -> None:
    client, _ = rig
    body = await envelope(await client.post(PATH, json={"bk_app_code": "reader", "bk_app_secret": "reader-secret"}))
    assert body["result"] is True


async def test_get_token_for_named_wecom_account(rig: Any) -> None:
    client, wechat = rig
    params = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET, "account": "corp"}
    body = await envelope(await client.get(PATH, params=params))
    assert body["result"] is True and wechat.count("wecom_gettoken") == 1


async def test_get_token_unknown_account_fails_in_envelope(rig: Any) -> None:
    client, _ = rig
    params = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET, "account": "nope"}
    body = await envelope(await client.get(PATH, params=params))
    assert body["result"] is False and body["code"] == 1306000 and body["data"] is None


async def test_get_token_wechat_failure_is_third_party_error(rig: Any) -> None:
    client, wechat = rig
    wechat.queue("mp_stable_token", {"errcode": 40164, "errmsg": "invalid ip, not in whitelist"})
    body = await envelope(await client.get(PATH, params={"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}))
    assert body["result"] is False and body["code"] == 1306201
    assert "40164" in body["message"]


# caller authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, 1306401),
        ({"bk_app_code": "bk_paas"}, 1306401),
        ({"bk_app_code": "stranger", "bk_app_secret": "x"}, 1306402),
        ({"bk_app_code": "bk_paas", "bk_app_secret": "wrong"}, 1306403),
        ({"bk_app_code": "outsider", "bk_app_secret": "outsider-secret"}, 1306406),
    ],
)
async def test_get_token_auth_failures(rig: Any, params: dict[str, str], code: int) -> None:
    client, wechat = rig
    body = await envelope(await client.get(PATH, params=params))
    assert (body["result"], body["code"]) == (False, code)
    assert wechat.token_fetches() == 0


async def test_get_token_failure_message_never_echoes_the_secret(rig: Any) -> None:
    client, _ = rig
    body = await envelope(await client.get(PATH, params={"bk_app_code": "bk_paas", "bk_app_secret": "guess-123"}))
    assert "guess-123" not in body["message"]


async def test_get_token_with_bk_signature(rig: Any) -> None:
    client, _ = rig
    body = await envelope(await client.get(PATH, params=signed_query()))
    assert body["result"] is True


async def test_post_with_bk_signature_covers_the_body(rig: Any) -> None:
    client, _ = rig
    payload = '{"account": "main"}'
    query = signed_query(method="POST", body=payload)
    ok = await envelope(await client.post(PATH, params=query, data=payload))
    assert ok["result"] is True
    query = signed_query(method="POST", body=payload)
    tampered = await envelope(await client.post(PATH, params=query, data='{"account": "corp"}'))
    assert tampered["code"] == 1306404


async def test_bk_signature_with_wrong_secret_is_refused(rig: Any) -> None:
    client, _ = rig
    body = await envelope(await client.get(PATH, params=signed_query("not-the-secret")))
    assert body["code"] == 1306404


async def test_bk_signature_outside_the_window_is_refused(rig: Any) -> None:
    client, _ = rig
    params = signed_query(bk_timestamp=str(int(time.time()) - 301))
    body = await envelope(await client.get(PATH, params=params))
    assert body["code"] == 1306405


async def test_bk_signature_replayed_nonce_is_refused(rig: Any) -> None:
    client, _ = rig
    params = signed_query()
    assert (await envelope(await client.get(PATH, params=params)))["result"] is True
    again = await envelope(await client.get(PATH, params=params))
    assert again["code"] == 1306405


def test_signature_matches_blueking_sdk_algorithm() -> None:
    query = {"bk_app_code": "a", "bk_nonce": "7", "bk_timestamp": "1700000000", "receiver": "x,y"}
    assert signature("s", "POST", "/p/", query, b'{"k": 1}') == bk_signature("s", "POST", "/p/", query, '{"k": 1}')


# refresh now ------------------------------------------------------------------------------------


async def test_refresh_forces_a_new_token(rig: Any) -> None:
    client, wechat = rig
    auth = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}
    before = (await envelope(await client.get(PATH, params=auth)))["data"]["access_token"]
    body = await envelope(await client.post("/api/v1/tokens/main/refresh", json=auth))
    assert body["result"] is True and body["data"]["access_token"] != before
    assert wechat.of("mp_stable_token")[-1].body["force_refresh"] is True


async def test_refresh_needs_the_refresh_permission(rig: Any) -> None:
    client, wechat = rig
    body = await envelope(
        await client.post(
            "/api/v1/tokens/main/refresh", json={"bk_app_code": "reader", "bk_app_secret": "reader-secret"}
        )
    )
    assert (body["result"], body["code"]) == (False, 1306406)
    assert wechat.token_fetches() == 0
