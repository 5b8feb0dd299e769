"""send_weixin's parameters in every form BlueKing accepts, and each of its form errors."""

from __future__ import annotations

import base64
import json

import pytest

from tests.sidecar.esb.conftest import Rig

DATA = {"heading": "Disk full", "message": "host-1 /var at 97%"}


def touser(rig: Rig) -> list[str]:
    return [body["touser"] for body in rig.bodies()]


async def test_send_weixin_post_json_sends_one_template_per_receiver(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": ["o1", "o2"], "data": DATA})
    assert envelope["result"] is True
    assert envelope["code"] == 0
    assert envelope["message"] == "WeChat message sending succeeded"
    assert envelope["data"] is None
    assert sorted(touser(rig)) == ["o1", "o2"]


async def test_send_weixin_post_form_reads_data_as_json_text(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", form={"receiver": "o1", "data": json.dumps(DATA)})
    assert envelope["result"] is True
    assert rig.bodies()[0]["data"]["thing1"] == {"value": "Disk full"}


async def test_send_weixin_get_query_sends(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", method="GET", query={"receiver": "o1", "data": json.dumps(DATA)})
    assert envelope["result"] is True
    assert touser(rig) == ["o1"]


async def test_send_weixin_query_and_body_parameters_merge(rig: Rig) -> None:
    response = await rig.client.post(
        "/api/c/compapi/cmsi/send_weixin/",
        params={"bk_app_code": "bk_paas", "receiver": "o9"},
        json={"bk_app_secret": "bk-paas-secret-for-tests", "data": DATA},
    )
    envelope = await response.json()
    assert envelope["result"] is True
    assert touser(rig) == ["o9"]


async def test_send_weixin_v2_path_is_the_same_component(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", v2=True, json={"receiver": "o1", "data": DATA})
    assert envelope["message"] == "WeChat message sending succeeded"
    assert touser(rig) == ["o1"]


@pytest.mark.parametrize(
    "receiver",
    [
        ["a1", "a2", "a3"],
        '["a1", "a2", "a3"]',
        "a1,a2,a3",
        "a1;a2;a3",
        "a1 a2 a3",
        "a1\na2\r\na3",
        " a1, a2;;a3 ",
    ],
)
async def test_receiver_list_forms_all_name_the_same_receivers(rig: Rig, receiver: object) -> None:
    await rig.send("send_weixin", json={"receiver": receiver, "data": DATA})
    assert sorted(touser(rig)) == ["a1", "a2", "a3"]


async def test_receiver_repeated_gets_one_message(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1,o1;o1", "data": DATA})
    assert touser(rig) == ["o1"]


async def test_receiver_wins_over_receiver_username(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "receiver__username": "alice", "data": DATA})
    assert envelope["result"] is True
    assert envelope["data"] is None  # no username check: usernames were ignored
    assert touser(rig) == ["o1"]


async def test_receivers_both_empty_is_refused_with_bluekings_message(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "", "receiver__username": [], "data": DATA})
    assert envelope == {
        "result": False,
        "code": 1306000,
        "message": "WeChat receiver [receiver, receiver__username] shall not be empty at the same time",
        "data": None,
        "request_id": envelope["request_id"],
    }
    assert rig.wechat.calls == []


async def test_receiver_not_a_list_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": {"a": 1}, "data": DATA})
    assert envelope["message"] == "wechat receiver [receiver] Must be a list"


async def test_data_missing_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1"})
    assert envelope["result"] is False
    assert envelope["message"] == "message data [data] This field is required."


async def test_data_missing_is_reported_before_empty_receivers(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={})
    assert envelope["message"] == "message data [data] This field is required."


@pytest.mark.parametrize("data", [["heading"], "not json", '["a"]', 5])
async def test_data_not_an_object_is_refused(rig: Rig, data: object) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": data})
    assert envelope["message"] == "message data [data] Must be the specified parameter data type dict"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"message": "m"}, "notification header text [heading] This field is required."),
        ({"heading": "  ", "message": "m"}, "notification header text [heading] This field is required."),
        ({"heading": "h"}, "notification text [message] This field is required."),
        ({"heading": "h", "message": ["m"]}, "notification text [message] Must be a string"),
    ],
)
async def test_data_fields_missing_are_refused_with_labels(rig: Rig, data: dict[str, object], message: str) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": data})
    assert (envelope["result"], envelope["code"], envelope["message"]) == (False, 1306000, message)
    assert rig.wechat.calls == []


async def test_unparsable_json_body_is_refused_with_bluekings_message(rig: Rig) -> None:
    response = await rig.client.post("/api/c/compapi/cmsi/send_weixin/", data=b'{"receiver": "o1",')
    assert response.status == 200
    envelope = await response.json()
    assert envelope["result"] is False
    assert envelope["code"] == 1306000
    assert envelope["message"] == "Request JSON string is wrong in format, which cannot be analyzed."


async def test_base64_message_is_decoded(rig: Rig) -> None:
    encoded = base64.b64encode("磁盘已满 97%".encode()).decode()
    data = {"heading": "h", "message": encoded, "is_message_base64": True}
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": data})
    assert envelope["result"] is True
    assert rig.bodies()[0]["data"]["thing2"] == {"value": "磁盘已满 97%"}


async def test_base64_flag_as_text_is_understood(rig: Rig) -> None:
    data = {"heading": "h", "message": base64.b64encode(b"plain").decode(), "is_message_base64": "true"}
    await rig.send("send_weixin", form={"receiver": "o1", "data": json.dumps(data)})
    assert rig.bodies()[0]["data"]["thing2"] == {"value": "plain"}


async def test_bad_base64_message_is_refused(rig: Rig) -> None:
    data = {"heading": "h", "message": "not base64!", "is_message_base64": True}
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": data})
    assert envelope["message"] == "notification text [message] is not valid base64 of UTF-8 text"
    assert rig.wechat.calls == []


async def test_base64_flag_that_is_not_a_boolean_is_refused(rig: Rig) -> None:
    data = {"heading": "h", "message": "m", "is_message_base64": "maybe"}
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": data})
    assert envelope["message"] == (
        "notification text is encoded by base64 or not [is_message_base64] Must be a boolean (true or false)"
    )


async def test_url_becomes_the_template_click_through(rig: Rig) -> None:
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, "url": "https://paas.example.com/a?b=1"})
    assert rig.bodies()[0]["url"] == "https://paas.example.com/a?b=1"


async def test_url_that_is_not_http_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, "url": "javascript:alert(1)"})
    assert envelope["message"] == "click-through url [url] Enter a valid URL (http:// or https://)."


async def test_identity_parameters_are_not_message_fields(rig: Rig) -> None:
    extra = {"bk_token": "tok", "bk_username": "admin", "bk_access_token": "at", "heading": "nope", "message": "nope"}
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, **extra})
    assert envelope["result"] is True
    assert rig.bodies()[0]["data"]["thing1"] == {"value": "Disk full"}


async def test_unknown_account_parameter_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, "account": "nope"})
    assert (
        envelope["message"]
        == "WeChat account [account] Select a valid choice. nope is not one of the available choices."
    )


async def test_head_request_sends_nothing(rig: Rig) -> None:
    response = await rig.client.head("/api/c/compapi/cmsi/send_weixin/", params={"receiver": "o1"})
    assert response.status == 405
    assert rig.wechat.calls == []
