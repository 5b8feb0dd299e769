"""GET /wechat/{account}/callback: server-URL verification for MP (plain echostr) and WeCom (encrypted)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.gateway.conftest import NOW, FakeClock
from tests.gateway.helpers import CallbackBuilder, sha1_sign

MP_URL = "/wechat/main/callback"
CORP_URL = "/wechat/corp/callback"


async def test_verify_mp_official_signature_echoes_echostr_exactly(client: TestClient, vectors: dict[str, Any]) -> None:
    v = vectors["mp_sample"]
    query = {"signature": v["signature"], "timestamp": v["timestamp"], "nonce": v["nonce"], "echostr": "5837397520"}
    resp = await client.get("/wechat/mpvec/callback", params=query)
    assert resp.status == 200
    assert await resp.read() == b"5837397520"
    assert resp.content_type == "text/plain"


async def test_verify_mp_builder_request_echoes_echostr(client: TestClient, mp: CallbackBuilder) -> None:
    resp = await client.get(MP_URL, params=mp.mp_verify("echo-1234"))
    assert (resp.status, await resp.text()) == (200, "echo-1234")


async def test_verify_mp_on_account_without_aes_key_echoes(client: TestClient, plain_mp: CallbackBuilder) -> None:
    resp = await client.get("/wechat/plain/callback", params=plain_mp.mp_verify("42"))
    assert (resp.status, await resp.text()) == (200, "42")


async def test_verify_mp_legacy_path_serves_the_legacy_account(client: TestClient, mp: CallbackBuilder) -> None:
    resp = await client.get("/console/user_center/weixin/mp/callback/", params=mp.mp_verify("77"))
    assert (resp.status, await resp.text()) == (200, "77")


async def test_verify_mp_bad_signature_is_403(client: TestClient, mp: CallbackBuilder) -> None:
    query = mp.mp_verify("1")
    query["signature"] = sha1_sign("wrongtoken", query["timestamp"], query["nonce"])
    resp = await client.get(MP_URL, params=query)
    assert resp.status == 403
    assert "signature" in await resp.text()


async def test_verify_mp_missing_echostr_is_400(client: TestClient, mp: CallbackBuilder) -> None:
    query = mp.mp_verify("1")
    del query["echostr"]
    resp = await client.get(MP_URL, params=query)
    assert resp.status == 400
    assert "echostr" in await resp.text()


async def test_verify_mp_non_numeric_timestamp_is_400(client: TestClient, mp: CallbackBuilder) -> None:
    query = mp.mp_verify("1", timestamp="12ab")
    resp = await client.get(MP_URL, params=query)
    assert resp.status == 400


async def test_verify_mp_stale_timestamp_is_403(client: TestClient, mp: CallbackBuilder) -> None:
    resp = await client.get(MP_URL, params=mp.mp_verify("1", timestamp=str(NOW - 301)))
    assert resp.status == 403
    assert "window" in await resp.text()


async def test_verify_mp_timestamp_at_the_skew_edge_passes(client: TestClient, mp: CallbackBuilder) -> None:
    resp = await client.get(MP_URL, params=mp.mp_verify("1", timestamp=str(NOW + 300)))
    assert resp.status == 200


async def test_verify_mp_clock_moves_and_request_goes_stale(
    client: TestClient, mp: CallbackBuilder, clock: FakeClock
) -> None:
    query = mp.mp_verify("1")
    clock.now += 1000
    assert (await client.get(MP_URL, params=query)).status == 403


async def test_verify_unknown_account_is_404(client: TestClient, mp: CallbackBuilder) -> None:
    resp = await client.get("/wechat/nobody/callback", params=mp.mp_verify("1"))
    assert resp.status == 404
    assert "nobody" in await resp.text()


async def test_verify_wecom_official_vector_answers_the_decrypted_echostr(
    client: TestClient, vectors: dict[str, Any]
) -> None:
    v = vectors["wecom_sample"]["verify_url"]
    query = {k: v[k] for k in ("msg_signature", "timestamp", "nonce", "echostr")}
    resp = await client.get("/wechat/corpvec/callback", params=query)
    assert resp.status == 200
    assert await resp.read() == v["expected_reply"].encode()


async def test_verify_wecom_unescaped_plus_in_echostr_still_verifies(
    client: TestClient, vectors: dict[str, Any]
) -> None:
    v = vectors["wecom_sample"]["verify_url"]
    assert "+" in v["echostr"]
    raw = f"msg_signature={v['msg_signature']}&timestamp={v['timestamp']}&nonce={v['nonce']}&echostr={v['echostr']}"
    resp = await client.get(f"/wechat/corpvec/callback?{raw}")
    assert (resp.status, await resp.text()) == (200, v["expected_reply"])


async def test_verify_wecom_builder_round_trip(client: TestClient, wecom: CallbackBuilder) -> None:
    resp = await client.get(CORP_URL, params=wecom.wecom_verify("中文 echo 42"))
    assert (resp.status, await resp.text()) == (200, "中文 echo 42")


async def test_verify_wecom_signature_without_echostr_is_403(client: TestClient, wecom: CallbackBuilder) -> None:
    query = wecom.wecom_verify("1")
    query["msg_signature"] = sha1_sign(wecom.token, query["timestamp"], query["nonce"])
    assert (await client.get(CORP_URL, params=query)).status == 403


async def test_verify_wecom_mp_style_signature_is_400(client: TestClient, wecom: CallbackBuilder) -> None:
    query = wecom.wecom_verify("1")
    query["signature"] = query.pop("msg_signature")
    resp = await client.get(CORP_URL, params=query)
    assert resp.status == 400
    assert "msg_signature" in await resp.text()


async def test_verify_wecom_wrong_corp_id_is_403(client: TestClient, wecom: CallbackBuilder) -> None:
    other = CallbackBuilder(wecom.token, wecom.encoding_aes_key, "wwOTHERCORP", now=NOW)
    resp = await client.get(CORP_URL, params=other.wecom_verify("1"))
    assert resp.status == 403
    assert "receiver" in await resp.text()


async def test_verify_wecom_garbage_echostr_with_valid_signature_is_400(
    client: TestClient, wecom: CallbackBuilder
) -> None:
    resp = await client.get(CORP_URL, params=wecom.wecom_verify(echostr="bm90IGEgY2lwaGVydGV4dA=="))
    assert resp.status == 400
    assert "ciphertext" in await resp.text()
