"""MP template sends: the official body, field mappings, WeChat's 2023 limits, failures, tokens."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from sidecar.keys import CONFIG, WXAPI
from tests.sidecar.esb.conftest import FAST_RETRIES, T0, Rig, RigFactory
from tests.sidecar.helpers import MP_ACCOUNT

DATA = {"heading": "Disk full", "message": "host-1 /var at 97%", "date": "2024-05-01 10:00", "remark": "see wiki"}


def with_fields(setting: str) -> dict[str, str]:
    return {"mp": MP_ACCOUNT + f"template_fields = {setting}\n"}


async def test_template_body_is_the_official_shape(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, "url": "https://paas.example.com/x"})
    [body] = rig.bodies()
    assert list(body) == ["touser", "template_id", "url", "client_msg_id", "data"]
    assert body["touser"] == "o1"
    assert body["template_id"] == "tmpl-1"
    assert body["url"] == "https://paas.example.com/x"
    assert isinstance(body["client_msg_id"], str) and len(body["client_msg_id"]) == 32
    assert body["data"] == {
        "thing1": {"value": "Disk full"},
        "thing2": {"value": "host-1 /var at 97%"},
        "time3": {"value": "2024-05-01 10:00"},
    }
    assert rig.wechat.of("template_send")[0].token is not None


async def test_template_without_url_has_no_url_key(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert "url" not in rig.bodies()[0]


async def test_template_date_defaults_to_the_send_time(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1", "data": {"heading": "h", "message": "m"}})
    expected = time.strftime("%Y-%m-%d %H:%M", time.localtime(T0))
    assert rig.bodies()[0]["data"]["time3"] == {"value": expected}


async def test_bk_legacy_preset_sends_bluekings_four_fields(make_rig: RigFactory) -> None:
    rig = await make_rig(replace=with_fields('"bk_legacy"'))
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert rig.bodies()[0]["data"] == {
        "first": {"value": "Disk full"},
        "keyword1": {"value": "host-1 /var at 97%"},
        "keyword2": {"value": "2024-05-01 10:00"},
        "remark": {"value": "see wiki"},
    }


async def test_mapped_field_without_a_value_is_left_out(make_rig: RigFactory) -> None:
    rig = await make_rig(replace=with_fields('"bk_legacy"'))
    await rig.send("send_weixin", json={"receiver": "o1", "data": {"heading": "h", "message": "m", "date": "d"}})
    assert set(rig.bodies()[0]["data"]) == {"first", "keyword1", "keyword2"}


async def test_custom_mapping_table_is_followed(make_rig: RigFactory) -> None:
    rig = await make_rig(replace=with_fields('{ character_string7 = "heading", thing9 = "remark" }'))
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert rig.bodies()[0]["data"] == {"character_string7": {"value": "Disk full"}, "thing9": {"value": "see wiki"}}


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("thing1", "一二三四五六七八九十一二三四五六七八九十二十一", "一二三四五六七八九十一二三四五六七八九…"),
        ("thing1", "exactly twenty chars", "exactly twenty chars"),
        ("character_string2", "x" * 40, "x" * 32),
        ("phone_number3", "+86 138 0000 0000 ext 12", "+86 138 0000 0000"),
        ("car_number4", "粤B12345678", "粤B123456"),
        ("const5", "c" * 25, "c" * 20),
        ("phrase6", "已经处理完毕了", "已经处理完"),
        ("keyword1", "k" * 300, "k" * 300),
    ],
)
async def test_template_values_are_cut_to_the_key_types_limit(
    make_rig: RigFactory, key: str, value: str, expected: str
) -> None:
    rig = await make_rig(replace=with_fields(f'{{ {key} = "message", thing8 = "heading" }}'))
    await rig.send("send_weixin", json={"receiver": "o1", "data": {"heading": "h", "message": value}})
    assert rig.bodies()[0]["data"][key] == {"value": expected}


async def test_template_values_lose_line_breaks(rig: Rig) -> None:
    data = {"heading": "Disk\nfull", "message": "line one\r\n  two\n\nthree"}
    await rig.send("send_weixin", json={"receiver": "o1", "data": data})
    values = rig.bodies()[0]["data"]
    assert values["thing1"] == {"value": "Disk full"}
    assert values["thing2"] == {"value": "line one two three"}


async def test_truncation_is_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.esb.template")
    await rig.send("send_weixin", json={"receiver": "o1", "data": {"heading": "h" * 30, "message": "m"}})
    [record] = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert (record.key, record.type, record.chars, record.kept) == ("thing1", "thing", 30, 20)  # type: ignore[attr-defined]


async def test_each_openid_is_one_call(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": [f"o{i}" for i in range(25)], "data": DATA})
    assert sorted(b["touser"] for b in rig.bodies()) == sorted(f"o{i}" for i in range(25))
    assert len({b["client_msg_id"] for b in rig.bodies()}) == 25


async def test_one_failed_openid_fails_the_send_and_names_it(rig: Rig) -> None:
    rig.wechat.queue("template_send", {"errcode": 43004, "errmsg": "require subscribe"})
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["result"] is False
    assert envelope["code"] == 1306000
    assert (
        envelope["message"] == "WeChat message sending failed, invalid user: o1 (WeChat error 43004: require subscribe)"
    )


async def test_partial_failure_sends_to_the_others(rig: Rig) -> None:
    rig.wechat.queue("template_send", {"errcode": 40003, "errmsg": "invalid openid"})
    envelope = await rig.send("send_mp_weixin", json={"receiver": ["bad", "o2", "o3"], "data": DATA})
    assert envelope["result"] is False
    assert envelope["data"]["sent"] == 2
    [failed] = envelope["data"]["failed"]
    assert failed["errcode"] == 40003
    assert rig.wechat.count("template_send") == 3


@pytest.mark.parametrize("receiver", ["oCarol|oBob", "@all", ["oBob", "oEve\x1b[2J"]])
async def test_receiver_that_is_no_openid_refuses_the_send(rig: Rig, receiver: Any) -> None:
    envelope = await rig.send("send_mp_weixin", json={"receiver": receiver, "data": DATA})
    assert envelope["result"] is False
    assert envelope["message"].startswith("wechat receiver [receiver] '")
    assert "\x1b" not in envelope["message"]
    assert rig.wechat.count("template_send") == 0


async def test_rate_limit_after_retries_is_1306429(rig: Rig) -> None:
    rig.wechat.queue("template_send", *[{"errcode": 45009, "errmsg": "api freq out of limit"}] * 3)
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["code"] == 1306429
    assert "45009" in envelope["message"]
    assert rig.wechat.count("template_send") == 3  # bounded: retry_attempts


async def test_other_wechat_error_is_1306201_with_its_errcode(rig: Rig) -> None:
    rig.wechat.queue("template_send", {"errcode": 40037, "errmsg": "invalid template_id"})
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["code"] == 1306201
    assert envelope["message"] == (
        "WeChat message sending failed, WeChat error 40037: invalid template_id (receivers: o1)"
    )


async def test_wechat_unreachable_is_1306201(rig: Rig) -> None:
    rig.wechat.queue("template_send", *[TimeoutError()] * 3)
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["code"] == 1306201
    assert envelope["message"].startswith("WeChat message sending failed, WeChat unreachable: ")


async def test_invalid_token_is_refreshed_and_the_send_repeated_once(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    rig.wechat.valid_tokens.clear()  # WeChat forgets the token: the next send gets 40001
    envelope = await rig.send("send_weixin", json={"receiver": "o2", "data": DATA})
    assert envelope["result"] is True
    assert rig.wechat.token_fetches() == 2
    first, second = rig.wechat.of("template_send")[1:]
    assert first.token != second.token
    assert first.body == second.body


async def test_invalid_token_twice_is_not_looped(rig: Rig) -> None:
    rig.wechat.queue("template_send", *[{"errcode": 40001, "errmsg": "invalid credential"}] * 5)
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["code"] == 1306201
    assert rig.wechat.count("template_send") == 2


async def test_one_request_to_1000_openids_fetches_one_token(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": [f"o{i}" for i in range(1000)], "data": DATA})
    assert envelope["result"] is True
    assert rig.wechat.count("template_send") == 1000
    assert rig.wechat.token_fetches() == 1


async def test_1000_concurrent_sends_fetch_one_token(rig: Rig) -> None:
    rig.wechat.token_delay_s = 0.05
    envelopes = await asyncio.gather(
        *(rig.send("send_weixin", json={"receiver": f"o{i}", "data": DATA}) for i in range(1000))
    )
    assert all(e["result"] for e in envelopes)
    assert rig.wechat.count("template_send") == 1000
    assert rig.wechat.token_fetches() == 1


async def test_template_sends_run_with_bounded_concurrency(rig: Rig) -> None:
    api = rig.app[WXAPI]
    original = api.template_send
    in_flight, peak = 0, 0

    async def slow_send(token: str, message: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return await original(token, message)

    api.template_send = slow_send  # type: ignore[method-assign]
    await rig.send("send_weixin", json={"receiver": [f"o{i}" for i in range(40)], "data": DATA})
    assert 1 < peak <= rig.app[CONFIG].wechat.send_concurrency == 8


async def test_wrong_app_secret_costs_one_token_call_not_one_per_openid(rig: Rig) -> None:
    rig.wechat.queue("mp_stable_token", {"errcode": 40125, "errmsg": "invalid appsecret"})
    envelope = await rig.send("send_weixin", json={"receiver": [f"o{i}" for i in range(50)], "data": DATA})
    assert envelope["code"] == 1306201
    assert envelope["message"].startswith("WeChat message sending failed, WeChat error 40125: invalid appsecret")
    assert envelope["data"]["sent"] == 0
    assert len(envelope["data"]["failed"]) == 50
    assert rig.wechat.token_fetches() == 1
    assert rig.wechat.count("template_send") == 0


async def test_unreachable_wechat_stops_the_remaining_sends(make_rig: RigFactory) -> None:
    rig = await make_rig(replace={"wechat": FAST_RETRIES + "send_concurrency = 1\n"})
    rig.wechat.queue("template_send", *[TimeoutError()] * 3)
    receivers = [f"o{i}" for i in range(10)]
    envelope = await rig.send("send_weixin", json={"receiver": receivers, "data": DATA})
    assert rig.wechat.count("template_send") == 3  # one openid, bounded retries; the other nine not tried
    assert envelope["code"] == 1306201
    assert envelope["message"] == (
        "WeChat message sending failed, WeChat unreachable: no answer within 2 s (receivers: "
        + "|".join(receivers)
        + ")"
    )
    assert sorted(row["receiver"] for row in envelope["data"]["failed"]) == sorted(receivers)


async def test_recipient_failures_do_not_stop_the_others(make_rig: RigFactory) -> None:
    rig = await make_rig(replace={"wechat": FAST_RETRIES + "send_concurrency = 1\n"})
    rig.wechat.queue("template_send", *[{"errcode": 43004, "errmsg": "require subscribe"}] * 2)
    envelope = await rig.send("send_weixin", json={"receiver": "o1,o2,o3,o4", "data": DATA})
    assert rig.wechat.count("template_send") == 4
    assert envelope["data"]["sent"] == 2


async def test_unexpected_error_still_answers_bluekings_envelope(rig: Rig) -> None:
    async def broken(token: str, message: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("internal detail")

    rig.app[WXAPI].template_send = broken  # type: ignore[method-assign]
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert (envelope["result"], envelope["code"]) == (False, 1306000)
    assert envelope["message"] == "WeChat message sending failed, internal error"
    assert "internal detail" not in str(envelope)
    assert [r.outcome for r in await rig.audit()] == ["failed"]


async def test_alike_failures_read_as_one_sentence_without_wechats_trace_ids(rig: Rig) -> None:
    rig.wechat.queue(
        "template_send",
        {"errcode": 43004, "errmsg": "require subscribe rid: 6650a1b2-1"},
        {"errcode": 43004, "errmsg": "require subscribe rid: 6650a1b2-2"},
    )
    envelope = await rig.send("send_weixin", json={"receiver": "o1,o2", "data": DATA})
    assert envelope["message"] in (
        f"WeChat message sending failed, invalid user: {ids} (WeChat error 43004: require subscribe)"
        for ids in ("o1|o2", "o2|o1")
    )
    assert sorted(row["errmsg"] for row in envelope["data"]["failed"]) == [
        "require subscribe rid: 6650a1b2-1",
        "require subscribe rid: 6650a1b2-2",
    ]
