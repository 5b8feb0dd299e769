"""WeCom app messages: BlueKing's text layout, textcard and markdown, batching, refusals, overrides."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sidecar.esb.conftest import Rig, RigFactory
from tests.sidecar.helpers import CORP_SECRET, MP_ACCOUNT, WECOM_ACCOUNT

DATA = {"heading": "Disk full", "message": "host-1 /var at 97%", "date": "2024-05-01 10:00", "remark": "see wiki"}
SECOND_APP = """
[[accounts]]
name = "corp-ops"
kind = "wecom"
corp_id = "ww1234567890"
corp_secret = "second-app-secret"
agent_id = 1000003
"""


async def send(rig: Rig, receiver: Any = "u1|u2", data: dict[str, str] = DATA, **extra: Any) -> dict[str, Any]:
    return await rig.send("send_weixin", json={"receiver": receiver, "data": data, "account": "corp", **extra})


def wecom_bodies(rig: Rig) -> list[dict[str, Any]]:
    return rig.bodies("wecom_message_send")


async def test_text_message_has_bluekings_layout_and_duplicate_check(rig: Rig) -> None:
    envelope = await send(rig)
    assert envelope["result"] is True
    assert envelope["message"] == "WeChat message sending succeeded"
    assert wecom_bodies(rig) == [
        {
            "touser": "u1|u2",
            "msgtype": "text",
            "agentid": 1000002,
            "text": {"content": "Disk full\nhost-1 /var at 97%\nDate: 2024-05-01 10:00\nsee wiki"},
            "enable_duplicate_check": 1,
            "duplicate_check_interval": 600,
        }
    ]


async def test_text_without_date_or_remark_has_two_lines(rig: Rig) -> None:
    await send(rig, data={"heading": "h", "message": "m"})
    assert wecom_bodies(rig)[0]["text"] == {"content": "h\nm"}


async def test_wecom_default_account_serves_send_weixin(make_rig: RigFactory) -> None:
    replace = {
        "mp": MP_ACCOUNT.replace("default = true", "default = false"),
        "wecom": WECOM_ACCOUNT + "default = true\n",
    }
    rig = await make_rig(replace=replace)
    await rig.send("send_weixin", json={"receiver": "u1", "data": DATA})
    assert wecom_bodies(rig)[0]["touser"] == "u1"
    assert rig.wechat.count("template_send") == 0


async def test_textcard_on_request(rig: Rig) -> None:
    await send(rig, url="https://paas.example.com/alert/1", wx_msg_type="textcard", btntxt="查看")
    body = wecom_bodies(rig)[0]
    assert body["msgtype"] == "textcard"
    assert body["textcard"] == {
        "title": "Disk full",
        "description": "host-1 /var at 97%\nDate: 2024-05-01 10:00\nsee wiki",
        "url": "https://paas.example.com/alert/1",
        "btntxt": "查看",
    }
    assert "text" not in body


async def test_textcard_title_and_description_are_cut_on_character_boundaries(rig: Rig) -> None:
    data = {"heading": "标" * 50, "message": "内" * 300}
    await send(rig, data=data, url="https://paas.example.com/", msgtype="textcard")
    card = wecom_bodies(rig)[0]["textcard"]
    assert card["title"] == "标" * 42  # 126 bytes: a 43rd character would need 129
    assert card["description"] == "内" * 170  # 510 bytes
    assert "btntxt" not in card


async def test_textcard_needs_a_url(rig: Rig) -> None:
    envelope = await send(rig, wx_msg_type="textcard")
    assert envelope["message"] == "click-through url [url] This field is required when wx_msg_type is textcard."
    assert rig.wechat.calls == []


async def test_markdown_on_request(rig: Rig) -> None:
    await send(rig, msgtype="markdown")
    body = wecom_bodies(rig)[0]
    assert body["msgtype"] == "markdown"
    assert body["markdown"] == {"content": "**Disk full**\nhost-1 /var at 97%\n> Date: 2024-05-01 10:00\n> see wiki"}


async def test_markdown_is_cut_to_2048_bytes(rig: Rig) -> None:
    await send(rig, data={"heading": "hh", "message": "é" * 2000}, wx_msg_type="markdown")
    content = wecom_bodies(rig)[0]["markdown"]["content"]
    assert content == "**hh**\n" + "é" * 1020  # 7 + 2040 bytes: a 1021st é would make 2049


async def test_unknown_message_type_is_refused(rig: Rig) -> None:
    envelope = await send(rig, wx_msg_type="news")
    assert envelope["message"] == (
        "WeChat message type [wx_msg_type] Select a valid choice. news is not one of the available choices."
    )


async def test_2500_recipients_go_in_three_calls(rig: Rig) -> None:
    users = [f"user{i}" for i in range(2500)]
    envelope = await send(rig, receiver=users)
    assert envelope["result"] is True
    sizes = [len(b["touser"].split("|")) for b in wecom_bodies(rig)]
    assert sizes == [1000, 1000, 500]
    assert [u for b in wecom_bodies(rig) for u in b["touser"].split("|")] == users
    assert rig.wechat.token_fetches() == 1


async def test_invaliduser_is_a_failure_with_bluekings_message(rig: Rig) -> None:
    rig.wechat.queue("wecom_message_send", {"errcode": 0, "errmsg": "ok", "invaliduser": "u2", "msgid": "m1"})
    envelope = await send(rig, receiver="u1,u2")
    assert envelope["result"] is False
    assert envelope["code"] == 1306000
    assert envelope["message"] == "WeChat message sending failed, invalid user: u2"
    assert envelope["data"]["sent"] == 1
    assert envelope["data"]["failed"] == [{"receiver": "u2", "errcode": 0, "errmsg": "invalid user"}]


async def test_unlicenseduser_is_reported(rig: Rig) -> None:
    answer = {"errcode": 0, "errmsg": "ok", "invaliduser": "", "unlicenseduser": "u1|u3", "msgid": "m1"}
    rig.wechat.queue("wecom_message_send", answer)
    envelope = await send(rig, receiver="u1,u2,u3")
    assert envelope["message"] == "WeChat message sending failed, unlicensed user: u1|u3"
    assert envelope["data"]["sent"] == 1


async def test_all_recipients_invalid_81013_is_reported(rig: Rig) -> None:
    rig.wechat.queue("wecom_message_send", {"errcode": 81013, "errmsg": "user & party & tag all invalid"})
    envelope = await send(rig, receiver="x1,x2")
    assert envelope["code"] == 1306000
    assert envelope["message"] == "WeChat message sending failed, invalid user: x1|x2"


async def test_other_wecom_error_is_1306201_with_its_errcode(rig: Rig) -> None:
    rig.wechat.queue("wecom_message_send", {"errcode": 40056, "errmsg": "invalid agentid"})
    envelope = await send(rig, receiver="u1")
    assert envelope["code"] == 1306201
    assert envelope["message"] == "WeChat message sending failed, WeChat error 40056: invalid agentid (receivers: u1)"


async def test_wecom_send_retried_after_a_timeout_is_the_same_deduplicated_call(rig: Rig) -> None:
    rig.wechat.queue("wecom_message_send", TimeoutError())
    envelope = await send(rig, receiver="u1")
    assert envelope["result"] is True
    first, second = wecom_bodies(rig)
    assert first == second
    assert first["enable_duplicate_check"] == 1


async def test_pipe_separated_receivers_are_counted_as_ids(rig: Rig) -> None:
    await send(rig, receiver=["a|b", "c", "b"])
    assert wecom_bodies(rig)[0]["touser"] == "a|b|c"


@pytest.mark.parametrize("receiver", ["@all", "u1|@all", ["u1", "@ALL"]])
async def test_whole_company_broadcast_is_refused(rig: Rig, receiver: Any) -> None:
    envelope = await send(rig, receiver=receiver)
    assert envelope["message"].startswith("wechat receiver [receiver] '@")
    assert envelope["message"].endswith("' is not accepted (the whole company): name the recipients")
    assert rig.wechat.calls == []


@pytest.mark.parametrize("receiver", ["bob,@all", "carol|bob\x00", "bob\tcarol", "=HYPERLINK(x)"])
async def test_receiver_that_is_no_userid_refuses_the_send(rig: Rig, receiver: str) -> None:
    envelope = await send(rig, receiver=[receiver])
    assert envelope["result"] is False and envelope["message"].startswith("wechat receiver [receiver] '")
    assert rig.wechat.calls == []


async def test_agentid_override_naming_a_configured_app_is_used(make_rig: RigFactory) -> None:
    rig = await make_rig(extra=SECOND_APP)
    envelope = await send(rig, wx_qy_agentid="1000003")
    assert envelope["result"] is True
    assert wecom_bodies(rig)[0]["agentid"] == 1000003
    [fetch] = rig.wechat.of("wecom_gettoken")
    assert fetch.query["corpsecret"] == "second-app-secret"


async def test_agentid_override_with_its_secret_is_used(make_rig: RigFactory) -> None:
    rig = await make_rig(extra=SECOND_APP)
    await send(rig, wx_qy_agentid=1000003, wx_qy_corpsecret="second-app-secret")
    assert wecom_bodies(rig)[0]["agentid"] == 1000003


async def test_corpsecret_override_alone_selects_its_app(make_rig: RigFactory) -> None:
    rig = await make_rig(extra=SECOND_APP)
    await send(rig, wx_qy_corpsecret="second-app-secret")
    assert wecom_bodies(rig)[0]["agentid"] == 1000003


async def test_override_matching_the_configured_app_is_accepted(rig: Rig) -> None:
    envelope = await send(rig, wx_qy_agentid="1000002", wx_qy_corpsecret=CORP_SECRET)
    assert envelope["result"] is True


async def test_unknown_agentid_override_is_refused(rig: Rig) -> None:
    envelope = await send(rig, wx_qy_agentid="999")
    assert envelope["result"] is False
    assert envelope["message"] == (
        "enterprise wechat agentid [wx_qy_agentid] is not a WeCom app configured in the sidecar"
        " (add it as an [[accounts]] entry)"
    )
    assert rig.wechat.calls == []


async def test_unconfigured_corpsecret_override_is_refused_without_echoing_it(rig: Rig) -> None:
    envelope = await send(rig, wx_qy_agentid="1000002", wx_qy_corpsecret="someone-elses-secret")
    assert envelope["message"] == (
        "enterprise wechat corpsecret [wx_qy_corpsecret] does not match a WeCom app configured in the sidecar"
    )
    assert rig.wechat.calls == []


async def test_non_numeric_agentid_is_refused(rig: Rig) -> None:
    envelope = await send(rig, wx_qy_agentid="abc")
    assert envelope["message"] == "enterprise wechat agentid [wx_qy_agentid] Enter a whole number."


async def test_overrides_are_ignored_for_mp(rig: Rig) -> None:
    envelope = await rig.send(
        "send_weixin", json={"receiver": "o1", "data": DATA, "wx_qy_agentid": "5", "wx_qy_corpsecret": "x"}
    )
    assert envelope["result"] is True
    assert rig.wechat.count("template_send") == 1


async def test_batches_after_a_wecom_error_are_not_attempted(rig: Rig) -> None:
    rig.wechat.queue("wecom_message_send", {"errcode": 40056, "errmsg": "invalid agentid"})
    envelope = await send(rig, receiver=[f"user{i}" for i in range(2500)])
    assert rig.wechat.count("wecom_message_send") == 1
    assert envelope["code"] == 1306201
    assert envelope["message"].startswith(
        "WeChat message sending failed, WeChat error 40056: invalid agentid (receivers: "
    )
    assert envelope["message"].endswith("(+2450 more))")
    assert len(envelope["data"]["failed"]) == 2500


async def test_wrong_corp_secret_costs_one_token_call(rig: Rig) -> None:
    rig.wechat.queue("wecom_gettoken", {"errcode": 40001, "errmsg": "invalid credential"})
    envelope = await send(rig, receiver=[f"user{i}" for i in range(1500)])
    assert envelope["code"] == 1306201
    assert rig.wechat.token_fetches() == 1
    assert rig.wechat.count("wecom_message_send") == 0
