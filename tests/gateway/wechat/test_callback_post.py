"""POST /wechat/{account}/callback: every mode round trip, and every way a callback is refused.

Each test starts from one valid request built by CallbackBuilder and breaks one thing.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contract import event_id
from tests.gateway.conftest import NOW, FakeClock
from tests.gateway.helpers import (
    BILLION_LAUGHS,
    CallbackBuilder,
    FakeSpool,
    event_message,
    message_xml,
    pad32,
    sha1_sign,
    text_message,
)

MP_URL = "/wechat/main/callback"
CORP_URL = "/wechat/corp/callback"


async def post(client: TestClient, url: str, request: tuple[dict[str, str], bytes]) -> tuple[int, str]:
    query, body = request
    resp = await client.post(url, params=query, data=body)
    return resp.status, await resp.text()


def only(spool: FakeSpool) -> dict[str, Any]:
    assert len(spool.events) == 1, spool.events
    return dict(next(iter(spool.events.values())))


# --- round trips ---------------------------------------------------------------------------


async def test_post_mp_plain_spools_the_message_and_answers_success(
    client: TestClient, spool: FakeSpool, plain_mp: CallbackBuilder
) -> None:
    fields = text_message("hello")
    assert await post(client, "/wechat/plain/callback", plain_mp.mp_plain(fields)) == (200, "success")
    envelope = only(spool)
    assert (envelope["account"], envelope["kind"], envelope["mode"]) == ("plain", "mp", "plain")
    assert envelope["message"] == fields
    assert envelope["id"] == event_id("plain", fields)


async def test_post_mp_plain_on_account_with_key_is_accepted(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    assert await post(client, MP_URL, mp.mp_plain(text_message())) == (200, "success")
    assert only(spool)["mode"] == "plain"


async def test_post_mp_plain_encrypt_type_raw_is_plaintext(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    query, body = mp.mp_plain(text_message())
    assert await post(client, MP_URL, ({**query, "encrypt_type": "raw"}, body)) == (200, "success")
    assert only(spool)["mode"] == "plain"


async def test_post_mp_safe_spools_the_decrypted_message(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    fields = text_message("安全模式 & <b>")
    assert await post(client, MP_URL, mp.mp_safe(fields)) == (200, "success")
    envelope = only(spool)
    assert (envelope["mode"], envelope["message"]) == ("safe", fields)


async def test_post_mp_compat_spools_the_decrypted_message(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    fields = text_message("compat")
    assert await post(client, MP_URL, mp.mp_compat(fields)) == (200, "success")
    envelope = only(spool)
    assert (envelope["mode"], envelope["message"]) == ("compat", fields)


async def test_post_mp_compat_decrypted_payload_wins_over_outer_fields(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    truth = text_message("the truth")
    lie = {**truth, "Content": "forged", "FromUserName": "o_attacker"}
    assert await post(client, MP_URL, mp.mp_compat(truth, outer=lie)) == (200, "success")
    assert only(spool)["message"] == truth


async def test_post_mp_official_sample_vector_is_spooled(
    client: TestClient, spool: FakeSpool, vectors: dict[str, Any]
) -> None:
    v = vectors["mp_sample"]
    query = {
        "signature": v["signature"],
        "timestamp": v["timestamp"],
        "nonce": v["nonce"],
        "encrypt_type": "aes",
        "msg_signature": v["msg_signature"],
    }
    body = message_xml({"ToUserName": v["plaintext_fields"]["ToUserName"], "Encrypt": v["encrypt"]}).encode()
    assert await post(client, "/wechat/mpvec/callback", (query, body)) == (200, "success")
    assert only(spool)["message"] == v["plaintext_fields"]


async def test_post_wecom_official_vector_is_spooled(
    client: TestClient, spool: FakeSpool, vectors: dict[str, Any]
) -> None:
    v = vectors["wecom_sample"]["post"]
    query = {k: v[k] for k in ("msg_signature", "timestamp", "nonce")}
    assert await post(client, "/wechat/corpvec/callback", (query, v["post_body"].encode())) == (200, "success")
    envelope = only(spool)
    assert (envelope["kind"], envelope["mode"]) == ("wecom", "safe")
    assert envelope["message"] == v["plaintext_fields"]


async def test_post_wecom_builder_round_trip(client: TestClient, spool: FakeSpool, wecom: CallbackBuilder) -> None:
    fields = {**text_message("企业微信", to_user=wecom.app_id, from_user="zhangsan"), "AgentID": "1000002"}
    assert await post(client, CORP_URL, wecom.wecom_post(fields)) == (200, "success")
    envelope = only(spool)
    assert (envelope["account"], envelope["kind"], envelope["mode"]) == ("corp", "wecom", "safe")
    assert envelope["message"] == fields


async def test_post_event_gets_the_contract_event_id(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    fields = event_message("subscribe", "qrscene_bind_1", Ticket="gQH47joAAAAAAAAAASxodHRw")
    assert await post(client, MP_URL, mp.mp_safe(fields)) == (200, "success")
    assert only(spool)["id"] == event_id("main", fields)


async def test_post_legacy_path_serves_the_legacy_account(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    status, _ = await post(client, "/console/user_center/weixin/mp/callback/", mp.mp_safe(text_message()))
    assert status == 200
    assert only(spool)["account"] == "main"


async def test_post_received_at_comes_from_the_injected_clock(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder, clock: FakeClock
) -> None:
    clock.now = NOW + 0.25
    await post(client, MP_URL, mp.mp_safe(text_message()))
    assert only(spool)["received_at"] == "2023-11-14T22:13:20.250Z"


# --- signatures ----------------------------------------------------------------------------


async def test_post_safe_bad_msg_signature_is_403(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    query, body = mp.mp_safe(text_message())
    query["msg_signature"] = "0" * 40
    assert (await post(client, MP_URL, (query, body)))[0] == 403
    assert not spool.events


async def test_post_safe_only_signature_without_msg_signature_is_400(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    query, body = mp.mp_safe(text_message())
    del query["msg_signature"]
    status, reason = await post(client, MP_URL, (query, body))
    assert (status, reason) == (400, "missing query parameter msg_signature")
    assert not spool.events


async def test_post_safe_msg_signature_not_covering_encrypt_is_403(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    query, body = mp.mp_safe(text_message())
    query["msg_signature"] = query["signature"]  # the classic bug: the plain signature in its place
    assert (await post(client, MP_URL, (query, body)))[0] == 403
    assert not spool.events


async def test_post_safe_ciphertext_swapped_under_valid_signature_is_403(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    query, _ = mp.mp_safe(text_message("signed"))
    _, other_body = mp.mp_safe(text_message("swapped in"))
    assert (await post(client, MP_URL, (query, other_body)))[0] == 403
    assert not spool.events


async def test_post_plain_bad_signature_is_403(client: TestClient, spool: FakeSpool, plain_mp: CallbackBuilder) -> None:
    query, body = plain_mp.mp_plain(text_message())
    query["signature"] = sha1_sign("othertoken", query["timestamp"], query["nonce"])
    assert (await post(client, "/wechat/plain/callback", (query, body)))[0] == 403
    assert not spool.events


async def test_post_wecom_bad_msg_signature_is_403(
    client: TestClient, spool: FakeSpool, wecom: CallbackBuilder
) -> None:
    query, body = wecom.wecom_post(text_message())
    query["nonce"] = "1"
    assert (await post(client, CORP_URL, (query, body)))[0] == 403
    assert not spool.events


# --- ciphertext ----------------------------------------------------------------------------


async def test_post_safe_wrong_app_id_is_403(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    intruder = CallbackBuilder(mp.token, mp.encoding_aes_key, "wxSOMEONEELSE0000", now=NOW)
    status, reason = await post(client, MP_URL, intruder.mp_safe(text_message()))
    assert status == 403 and "receiver" in reason
    assert not spool.events


async def test_post_wecom_wrong_corp_id_is_403(client: TestClient, spool: FakeSpool, wecom: CallbackBuilder) -> None:
    intruder = CallbackBuilder(wecom.token, wecom.encoding_aes_key, "wwSOMEONEELSE", now=NOW)
    assert (await post(client, CORP_URL, intruder.wecom_post(text_message())))[0] == 403
    assert not spool.events


async def test_post_safe_bad_padding_is_400(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    padded = bytearray(pad32(mp.layout(message_xml(text_message()))))
    padded[-1] = 40  # over 32
    status, reason = await post(client, MP_URL, mp.mp_safe(text_message(), encrypt=mp.forge(bytes(padded))))
    assert (status, reason) == (400, "bad PKCS#7 padding")
    assert not spool.events


async def test_post_safe_length_field_beyond_data_is_400(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    forged = mp.forge(pad32(mp.layout(message_xml(text_message()), length=1 << 20)))
    status, reason = await post(client, MP_URL, mp.mp_safe(text_message(), encrypt=forged))
    assert (status, reason) == (400, "length field exceeds the decrypted data")


async def test_post_safe_bad_base64_is_400(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    status, reason = await post(client, MP_URL, mp.mp_safe(text_message(), encrypt="%%%not-base64%%%"))
    assert (status, reason) == (400, "ciphertext is not valid base64")


async def test_post_safe_encrypt_missing_from_body_is_400(client: TestClient, mp: CallbackBuilder) -> None:
    query, _ = mp.mp_safe(text_message())
    status, reason = await post(client, MP_URL, (query, message_xml(text_message()).encode()))
    assert (status, reason) == (400, "encrypted callback without <Encrypt>")


async def test_post_encrypted_to_account_without_key_is_400(client: TestClient, plain_mp: CallbackBuilder) -> None:
    keyed = CallbackBuilder(plain_mp.token, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", plain_mp.app_id, now=NOW)
    status, reason = await post(client, "/wechat/plain/callback", keyed.mp_safe(text_message()))
    assert status == 400 and "encoding_aes_key" in reason


async def test_post_decrypted_payload_lacking_fromusername_is_400(client: TestClient, mp: CallbackBuilder) -> None:
    fields = text_message()
    del fields["FromUserName"]
    status, reason = await post(client, MP_URL, mp.mp_safe(fields))
    assert (status, reason) == (400, "message lacks <FromUserName>")


# --- hostile XML and size ------------------------------------------------------------------


async def test_post_plain_doctype_is_400(client: TestClient, spool: FakeSpool, plain_mp: CallbackBuilder) -> None:
    query, body = plain_mp.mp_plain(text_message())
    status, reason = await post(client, "/wechat/plain/callback", (query, b'<!DOCTYPE xml [<!ENTITY a "b">]>' + body))
    assert (status, reason) == (400, "DOCTYPE is refused")
    assert not spool.events


async def test_post_plain_billion_laughs_is_400(client: TestClient, plain_mp: CallbackBuilder) -> None:
    query, _ = plain_mp.mp_plain(text_message())
    assert (await post(client, "/wechat/plain/callback", (query, BILLION_LAUGHS.encode())))[0] == 400


async def test_post_safe_entities_inside_the_decrypted_payload_are_400(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    inner = '<!DOCTYPE xml [<!ENTITY e "x">]>' + message_xml(text_message("&e;"), cdata=False).replace("&amp;", "&")
    status, reason = await post(client, MP_URL, mp.mp_safe(text_message(), encrypt=mp.encrypt(inner)))
    assert (status, reason) == (400, "DOCTYPE is refused")
    assert not spool.events


async def test_post_oversize_body_is_413(client: TestClient, spool: FakeSpool, plain_mp: CallbackBuilder) -> None:
    query, _ = plain_mp.mp_plain(text_message())
    body = message_xml(text_message("x" * 70_000)).encode()
    assert (await post(client, "/wechat/plain/callback", (query, body)))[0] == 413
    assert not spool.events


async def test_post_oversize_chunked_body_is_413(client: TestClient, plain_mp: CallbackBuilder) -> None:
    query, _ = plain_mp.mp_plain(text_message())

    async def chunks() -> Any:
        for _ in range(20):
            yield b"<A>" + b"x" * 5000 + b"</A>"

    resp = await client.post("/wechat/plain/callback", params=query, data=chunks())
    assert resp.status == 413


async def test_post_malformed_xml_is_400_with_reason(client: TestClient, plain_mp: CallbackBuilder) -> None:
    query, _ = plain_mp.mp_plain(text_message())
    status, reason = await post(client, "/wechat/plain/callback", (query, b"<xml><A>1</A>"))
    assert status == 400 and reason.startswith("malformed XML:")


# --- query parameters, accounts, modes -----------------------------------------------------


async def test_post_missing_timestamp_is_400(client: TestClient, mp: CallbackBuilder) -> None:
    query, body = mp.mp_safe(text_message())
    del query["timestamp"]
    assert await post(client, MP_URL, (query, body)) == (400, "missing query parameter timestamp")


async def test_post_missing_nonce_is_400(client: TestClient, wecom: CallbackBuilder) -> None:
    query, body = wecom.wecom_post(text_message())
    del query["nonce"]
    assert await post(client, CORP_URL, (query, body)) == (400, "missing query parameter nonce")


async def test_post_plain_missing_signature_is_400(client: TestClient, plain_mp: CallbackBuilder) -> None:
    query, body = plain_mp.mp_plain(text_message())
    del query["signature"]
    assert await post(client, "/wechat/plain/callback", (query, body)) == (400, "missing query parameter signature")


async def test_post_unknown_encrypt_type_is_400(client: TestClient, mp: CallbackBuilder) -> None:
    query, body = mp.mp_safe(text_message())
    query["encrypt_type"] = "des"
    assert (await post(client, MP_URL, (query, body)))[0] == 400


async def test_post_unknown_account_is_404(client: TestClient, mp: CallbackBuilder) -> None:
    assert (await post(client, "/wechat/ghost/callback", mp.mp_safe(text_message())))[0] == 404


async def test_post_require_encryption_refuses_plaintext_with_403(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    status, reason = await post(client, "/wechat/strict/callback", mp.mp_plain(text_message()))
    assert (status, reason) == (403, "this account accepts encrypted callbacks only")
    assert not spool.events


async def test_post_require_encryption_accepts_safe_mode(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    assert await post(client, "/wechat/strict/callback", mp.mp_safe(text_message())) == (200, "success")
    assert only(spool)["mode"] == "safe"


async def test_post_stale_timestamp_is_403_and_spools_nothing(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    status, reason = await post(client, MP_URL, mp.mp_safe(text_message(), timestamp=str(NOW - 3600)))
    assert status == 403 and "window" in reason
    assert not spool.events


async def test_post_future_timestamp_beyond_skew_is_403(client: TestClient, mp: CallbackBuilder) -> None:
    assert (await post(client, MP_URL, mp.mp_safe(text_message(), timestamp=str(NOW + 301))))[0] == 403


async def test_post_spool_failure_is_503_so_wechat_retries(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.fail = True
    status, reason = await post(client, MP_URL, mp.mp_safe(text_message()))
    assert (status, reason) == (503, "disk full")


async def test_post_every_answer_carries_a_request_id(client: TestClient, mp: CallbackBuilder) -> None:
    query, body = mp.mp_safe(text_message())
    ok = await client.post(MP_URL, params=query, data=body)
    refused = await client.post("/wechat/ghost/callback", params=query, data=body)
    assert len(ok.headers["X-Request-Id"]) == 32
    assert len(refused.headers["X-Request-Id"]) == 32


async def test_post_accepted_is_logged_at_debug_and_a_repeat_at_info(
    client: TestClient, mp: CallbackBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    request = mp.mp_safe(text_message())
    with caplog.at_level(logging.DEBUG, logger="gateway.wechat.callback"):
        for _ in range(2):
            assert (await post(client, MP_URL, request))[0] == 200
    answered = [(r.levelno, r.__dict__["outcome"]) for r in caplog.records if r.getMessage() == "callback answered"]
    assert answered == [(logging.DEBUG, "accepted"), (logging.INFO, "duplicate")]


async def test_post_accepted_at_info_level_writes_no_line_but_is_counted(
    client: TestClient, mp: CallbackBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.wechat.callback"):
        assert (await post(client, MP_URL, mp.mp_safe(text_message())))[0] == 200
    assert not [r for r in caplog.records if r.name == "gateway.wechat.callback"]
    metrics = await (await client.get("/metrics")).text()
    assert 'wxgw_callbacks_total{account="main",mode="safe",outcome="accepted"} 1.0' in metrics
