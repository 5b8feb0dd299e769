"""What WeChat gets back: passive replies inside the budget, success outside it, and retries.

The FakeSpool plays the sidecar: ``spool.answer`` returns the reply for each new event after
``spool.answer_delay_s``; accounts in conftest have a 0.3 s reply budget.
"""

from __future__ import annotations

import asyncio

import xmltodict
from aiohttp.test_utils import TestClient

from contract import Envelope, Reply, text_reply
from tests.gateway.conftest import NOW, FakeClock
from tests.gateway.helpers import CallbackBuilder, FakeSpool, text_message

MP_URL = "/wechat/main/callback"
CORP_URL = "/wechat/corp/callback"
TRICKY = "收到 <b>&amp; ]]> done ]]]]>"


def echo(envelope: Envelope) -> Reply:
    return text_reply(TRICKY)


async def post(client: TestClient, url: str, request: tuple[dict[str, str], bytes]) -> tuple[int, str]:
    query, body = request
    resp = await client.post(url, params=query, data=body)
    return resp.status, await resp.text()


# --- inside the budget ---------------------------------------------------------------------


async def test_reply_safe_mode_is_encrypted_and_decrypts_to_the_text_reply(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.answer, spool.answer_delay_s = echo, 0.05
    status, body = await post(client, MP_URL, mp.mp_safe(text_message(from_user="o_alice", to_user="gh_app")))
    assert status == 200
    reply = mp.open_reply(body)
    assert reply == {
        "ToUserName": "o_alice",
        "FromUserName": "gh_app",
        "CreateTime": str(NOW),
        "MsgType": "text",
        "Content": TRICKY,
    }


async def test_reply_envelope_carries_timestamp_and_a_fresh_nonce(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.answer = echo
    bodies = [(await post(client, MP_URL, mp.mp_safe(text_message())))[1] for _ in range(2)]
    envelopes = [xmltodict.parse(b)["xml"] for b in bodies]
    assert [e["TimeStamp"] for e in envelopes] == [str(NOW), str(NOW)]
    assert envelopes[0]["Nonce"] != envelopes[1]["Nonce"]
    assert all(e["Nonce"].isdigit() for e in envelopes)


async def test_reply_compat_mode_is_encrypted(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    spool.answer = echo
    status, body = await post(client, MP_URL, mp.mp_compat(text_message()))
    assert status == 200
    assert mp.open_reply(body)["Content"] == TRICKY


async def test_reply_plain_mode_is_plain_xml(client: TestClient, spool: FakeSpool, plain_mp: CallbackBuilder) -> None:
    spool.answer = echo
    status, body = await post(client, "/wechat/plain/callback", plain_mp.mp_plain(text_message(from_user="o_bob")))
    assert status == 200
    reply = xmltodict.parse(body)["xml"]
    assert (reply["ToUserName"], reply["MsgType"], reply["Content"]) == ("o_bob", "text", TRICKY)
    assert "Encrypt" not in reply


async def test_reply_wecom_is_encrypted_for_the_corp(
    client: TestClient, spool: FakeSpool, wecom: CallbackBuilder
) -> None:
    spool.answer = echo
    fields = {**text_message(to_user=wecom.app_id, from_user="zhangsan"), "AgentID": "1000002"}
    status, body = await post(client, CORP_URL, wecom.wecom_post(fields))
    assert status == 200
    reply = wecom.open_reply(body)
    assert (reply["ToUserName"], reply["FromUserName"], reply["Content"]) == ("zhangsan", wecom.app_id, TRICKY)


async def test_reply_is_application_xml(client: TestClient, spool: FakeSpool, mp: CallbackBuilder) -> None:
    spool.answer = echo
    query, body = mp.mp_safe(text_message())
    resp = await client.post(MP_URL, params=query, data=body)
    assert resp.content_type == "application/xml"


# --- outside the budget --------------------------------------------------------------------


async def test_reply_later_than_the_budget_answers_success(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.answer, spool.answer_delay_s = echo, 1.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await post(client, MP_URL, mp.mp_safe(text_message())) == (200, "success")
    assert 0.25 < loop.time() - started < 0.9


async def test_reply_acknowledged_without_reply_answers_success_at_once(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.answer, spool.answer_delay_s = (lambda envelope: None), 0.01
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await post(client, MP_URL, mp.mp_safe(text_message())) == (200, "success")
    assert loop.time() - started < 0.25


async def test_reply_nobody_answers_success_after_the_budget(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.answer = None
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await post(client, MP_URL, mp.mp_safe(text_message())) == (200, "success")
    assert loop.time() - started >= 0.29
    assert len(spool.events) == 1


# --- WeChat's retries ----------------------------------------------------------------------


async def test_retry_same_request_four_times_spools_once_and_answers_four_times(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    request = mp.mp_safe(text_message())
    answers = [await post(client, MP_URL, request) for _ in range(4)]
    assert answers == [(200, "success")] * 4
    assert len(spool.events) == 1
    assert spool.commits == 4


async def test_retry_four_concurrent_deliveries_spool_once(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    request = mp.mp_safe(text_message())
    answers = await asyncio.gather(*(post(client, MP_URL, request) for _ in range(4)))
    assert answers == [(200, "success")] * 4
    assert len(spool.events) == 1


async def test_retry_gets_the_same_reply_as_the_first_delivery(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder
) -> None:
    spool.answer = echo
    request = mp.mp_safe(text_message())
    replies = [mp.open_reply((await post(client, MP_URL, request))[1])["Content"] for _ in range(4)]
    assert replies == [TRICKY] * 4
    assert len(spool.events) == 1


async def test_retry_after_the_skew_window_of_a_spooled_event_is_answered_not_refused(
    client: TestClient, spool: FakeSpool, mp: CallbackBuilder, clock: FakeClock
) -> None:
    request = mp.mp_safe(text_message())
    assert (await post(client, MP_URL, request))[0] == 200
    clock.now += 3600
    assert await post(client, MP_URL, request) == (200, "success")
    assert len(spool.events) == 1
    assert spool.commits == 1  # the late retry only looked the event up


async def test_retry_plain_mode_four_times_spools_once(
    client: TestClient, spool: FakeSpool, plain_mp: CallbackBuilder
) -> None:
    request = plain_mp.mp_plain(text_message())
    answers = [await post(client, "/wechat/plain/callback", request) for _ in range(4)]
    assert answers == [(200, "success")] * 4
    assert len(spool.events) == 1


async def test_retry_wecom_four_times_spools_once(client: TestClient, spool: FakeSpool, wecom: CallbackBuilder) -> None:
    request = wecom.wecom_post(text_message(to_user=wecom.app_id))
    answers = [await post(client, CORP_URL, request) for _ in range(4)]
    assert answers == [(200, "success")] * 4
    assert len(spool.events) == 1
