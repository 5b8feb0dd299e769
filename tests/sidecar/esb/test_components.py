"""send_msg (msg_type=weixin), send_mp_weixin and send_qy_weixin: BlueKing's related components."""

from __future__ import annotations

import base64

import pytest

from tests.sidecar.esb.conftest import Rig, RigFactory
from tests.sidecar.helpers import MP_ACCOUNT, WECOM_ACCOUNT

DATA = {"heading": "h", "message": "m"}
MSG = {"msg_type": "weixin", "receiver__username": "alice", "title": "Disk full", "content": "host-1 at 97%"}


async def test_send_msg_weixin_maps_title_content_date_remark(make_rig: RigFactory) -> None:
    rig = await make_rig(replace={"mp": MP_ACCOUNT + 'template_fields = "bk_legacy"\n'})
    await rig.bind("alice", "o-alice")
    envelope = await rig.send("send_msg", json={**MSG, "date": "2024-05-01", "remark": "r"})
    assert envelope["result"] is True
    assert envelope["data"]["username_check"]["invalid"] == []
    [body] = rig.bodies()
    assert body["touser"] == "o-alice"
    assert body["data"] == {
        "first": {"value": "Disk full"},
        "keyword1": {"value": "host-1 at 97%"},
        "keyword2": {"value": "2024-05-01"},
        "remark": {"value": "r"},
    }


async def test_send_msg_decodes_base64_content(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    content = base64.b64encode("磁盘已满".encode()).decode()
    await rig.send("send_msg", json={**MSG, "content": content, "is_content_base64": True})
    assert rig.bodies()[0]["data"]["thing2"] == {"value": "磁盘已满"}


async def test_send_msg_bad_base64_content_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_msg", json={**MSG, "content": "%%%", "is_content_base64": "1"})
    assert envelope["message"] == "content [content] is not valid base64 of UTF-8 text"


async def test_send_msg_requires_receiver_username_and_ignores_receiver(rig: Rig) -> None:
    message = {k: v for k, v in MSG.items() if k != "receiver__username"}
    envelope = await rig.send("send_msg", json={**message, "receiver": "o1"})
    assert envelope["message"] == "recipients [receiver__username] This field is required."
    assert rig.wechat.calls == []


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("msg_type", "msg type [msg_type] This field is required."),
        ("title", "subject [title] This field is required."),
        ("content", "content [content] This field is required."),
    ],
)
async def test_send_msg_required_fields(rig: Rig, missing: str, message: str) -> None:
    envelope = await rig.send("send_msg", json={k: v for k, v in MSG.items() if k != missing})
    assert (envelope["result"], envelope["code"], envelope["message"]) == (False, 1306000, message)


async def test_send_msg_other_msg_type_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_msg", json={**MSG, "msg_type": "mail"})
    assert envelope["result"] is False
    assert envelope["code"] == 1306000
    assert (
        envelope["message"] == "Unsupported type of msg type [msg_type=mail]: this service sends msg_type=weixin only"
    )
    assert rig.wechat.calls == []


async def test_send_msg_as_get_on_v2(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    envelope = await rig.send("send_msg", method="GET", v2=True, query=MSG)
    assert envelope["result"] is True
    assert rig.bodies()[0]["touser"] == "o-alice"


async def test_send_mp_weixin_sends_templates_to_openids(rig: Rig) -> None:
    envelope = await rig.send("send_mp_weixin", json={"receiver": "o1,o2", "data": DATA})
    assert envelope["message"] == "WeChat message sending succeeded"
    assert sorted(b["touser"] for b in rig.bodies()) == ["o1", "o2"]


async def test_send_mp_weixin_requires_receiver(rig: Rig) -> None:
    envelope = await rig.send("send_mp_weixin", json={"receiver__username": "alice", "data": DATA})
    assert envelope["message"] == "wechat receiver [receiver] This field is required."


async def test_send_mp_weixin_requires_data(rig: Rig) -> None:
    envelope = await rig.send("send_mp_weixin", form={"receiver": "o1"})
    assert envelope["message"] == "message data [data] This field is required."


async def test_send_mp_weixin_uses_the_mp_account_even_when_wecom_is_default(make_rig: RigFactory) -> None:
    rig = await make_rig(
        replace={
            "mp": MP_ACCOUNT.replace("default = true", "default = false"),
            "wecom": WECOM_ACCOUNT + "default = true\n",
        }
    )
    envelope = await rig.send("send_mp_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["result"] is True
    assert rig.wechat.count("template_send") == 1
    assert rig.wechat.count("wecom_message_send") == 0


async def test_send_mp_weixin_without_an_mp_account_is_refused(make_rig: RigFactory) -> None:
    rig = await make_rig(replace={"mp": ""})
    envelope = await rig.send("send_mp_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["message"] == (
        "WeChat type that is not supported [wx_type=mp]: no Official Account (mp) account is configured"
    )


async def test_send_mp_weixin_refuses_a_wecom_account(rig: Rig) -> None:
    envelope = await rig.send("send_mp_weixin", json={"receiver": "o1", "data": DATA, "account": "corp"})
    assert envelope["message"].startswith("WeChat account [account] Select a valid choice.")


async def test_send_qy_weixin_sends_content_as_given(rig: Rig) -> None:
    envelope = await rig.send("send_qy_weixin", json={"receiver": "u1;u2", "content": "line 1\nline 2"})
    assert envelope["result"] is True
    [body] = rig.bodies("wecom_message_send")
    assert body["touser"] == "u1|u2"
    assert body["text"] == {"content": "line 1\nline 2"}
    assert body["agentid"] == 1000002


async def test_send_qy_weixin_markdown_on_request(rig: Rig) -> None:
    await rig.send("send_qy_weixin", json={"receiver": "u1", "content": "**bold**", "wx_msg_type": "markdown"})
    assert rig.bodies("wecom_message_send")[0]["markdown"] == {"content": "**bold**"}


async def test_send_qy_weixin_textcard_is_refused(rig: Rig) -> None:
    envelope = await rig.send(
        "send_qy_weixin", json={"receiver": "u1", "content": "c", "msgtype": "textcard", "url": "https://x.example/"}
    )
    assert envelope["message"] == (
        "WeChat message type [wx_msg_type] textcard needs a title: use send_weixin with data.heading"
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"content": "c"}, "wechat receiver [receiver] This field is required."),
        ({"receiver": "u1"}, "message content [content] This field is required."),
    ],
)
async def test_send_qy_weixin_required_fields(rig: Rig, params: dict[str, str], message: str) -> None:
    envelope = await rig.send("send_qy_weixin", form=params)
    assert envelope["message"] == message


async def test_send_qy_weixin_without_a_wecom_account_is_refused(make_rig: RigFactory) -> None:
    rig = await make_rig(replace={"wecom": ""})
    envelope = await rig.send("send_qy_weixin", query={"receiver": "u1", "content": "c"})
    assert envelope["message"] == (
        "WeChat type that is not supported [wx_type=qy]: no WeCom (wecom) account is configured"
    )
