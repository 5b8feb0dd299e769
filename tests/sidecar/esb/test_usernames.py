"""receiver__username: mapping through the binding table, and BlueKing's answers for bad users."""

from __future__ import annotations

from typing import Any

from tests.sidecar.esb.conftest import Rig

DATA = {"heading": "h", "message": "m"}


async def send_to(rig: Rig, usernames: str, **extra: object) -> dict[str, Any]:
    return await rig.send("send_weixin", json={"receiver__username": usernames, "data": DATA, **extra})


def touser(rig: Rig) -> list[str]:
    return sorted(body["touser"] for body in rig.bodies())


async def test_bound_users_get_their_openids(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    await rig.bind("bob", "o-bob")
    envelope = await send_to(rig, "alice,bob")
    assert envelope["result"] is True
    assert envelope["message"] == "WeChat message sending succeeded"
    assert envelope["data"] == {"username_check": {"invalid": [], "unbound": [], "inactive": []}}
    assert touser(rig) == ["o-alice", "o-bob"]


async def test_unbound_users_are_reported_and_the_rest_are_sent(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    envelope = await send_to(rig, "alice,bob,carol")
    assert envelope["result"] is False
    assert envelope["code"] == 1306000
    assert envelope["message"] == (
        "Some users failed to send wechat message. The following users are not blueking users: bob,carol"
    )
    assert envelope["data"]["username_check"]["invalid"] == ["bob", "carol"]
    assert touser(rig) == ["o-alice"]


async def test_inactive_binding_is_reported_not_sent(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    await rig.bind("dave", "o-dave", active=False)
    envelope = await send_to(rig, "alice dave")
    assert envelope["message"] == (
        "Some users failed to send wechat message. The following users contact format are incorrect: dave"
    )
    assert envelope["data"]["username_check"] == {"invalid": ["dave"], "unbound": [], "inactive": ["dave"]}
    assert touser(rig) == ["o-alice"]


async def test_stored_id_mallory_at_all_is_reported_not_sent(rig: Rig) -> None:
    await rig.bind("alice", "alice", account="corp")
    await rig.bind("mallory", "@all", account="corp")  # imported before the id rules existed
    envelope = await send_to(rig, "alice,mallory", account="corp")
    assert envelope["data"]["username_check"] == {"invalid": ["mallory"], "unbound": [], "inactive": ["mallory"]}
    assert [body["touser"] for body in rig.bodies("wecom_message_send")] == ["alice"]


async def test_both_kinds_of_bad_user_read_as_bluekings_sentences(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    await rig.bind("c", "o-c", active=False)
    envelope = await send_to(rig, '["alice", "a", "b", "c"]')
    assert envelope["message"] == (
        "Some users failed to send wechat message. "
        "The following users are not blueking users: a,b;The following users contact format are incorrect: c"
    )
    assert envelope["data"]["username_check"]["invalid"] == ["a", "b", "c"]


async def test_no_valid_user_sends_nothing(rig: Rig) -> None:
    await rig.bind("c", "o-c", active=False)
    envelope = await send_to(rig, "a,c")
    assert envelope["result"] is False
    assert envelope["code"] == 1306000
    assert envelope["message"] == (
        "All users message failed to be sent. "
        "The following users are not blueking users: a;The following users contact format are incorrect: c"
    )
    assert envelope["data"] == {"username_check": {"invalid": ["a", "c"], "unbound": ["a"], "inactive": ["c"]}}
    assert rig.wechat.calls == []


async def test_bindings_of_another_account_do_not_count(rig: Rig) -> None:
    await rig.bind("alice", "alice.wecom", account="corp")
    envelope = await send_to(rig, "alice")
    assert envelope["message"].endswith("The following users are not blueking users: alice")
    assert rig.wechat.calls == []


async def test_wecom_usernames_map_to_userids_in_one_call(rig: Rig) -> None:
    await rig.bind("alice", "AliceW", account="corp")
    await rig.bind("bob", "BobW", account="corp")
    envelope = await send_to(rig, "alice,bob,zed", account="corp")
    assert envelope["message"].endswith("not blueking users: zed")
    assert [b["touser"] for b in rig.bodies("wecom_message_send")] == ["AliceW|BobW"]


async def test_unbound_users_and_a_wechat_failure_are_both_told(rig: Rig) -> None:
    await rig.bind("alice", "o-alice")
    rig.wechat.queue("template_send", {"errcode": 43004, "errmsg": "require subscribe"})
    envelope = await send_to(rig, "alice,bob")
    assert envelope["result"] is False
    assert envelope["message"] == (
        "WeChat message sending failed, invalid user: o-alice (WeChat error 43004: require subscribe). "
        "The following users are not blueking users: bob"
    )
    assert envelope["data"]["username_check"]["invalid"] == ["bob"]
