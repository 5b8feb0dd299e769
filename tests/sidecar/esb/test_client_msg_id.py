"""client_msg_id: derived from the request, so a repeated send is delivered once, a new alert anew."""

from __future__ import annotations

from tests.sidecar.esb.conftest import T0, Rig, RigFactory

DATA = {"heading": "Disk full", "message": "host-1 /var at 97%"}


async def msg_id(rig: Rig, receiver: str = "o1", data: dict[str, str] = DATA, **extra: object) -> str:
    """Send once and return the client_msg_id WeChat received."""
    await rig.send("send_weixin", json={"receiver": receiver, "data": data, **extra})
    body = rig.bodies()[-1]
    assert body["touser"] == receiver
    return str(body["client_msg_id"])


async def test_send_retried_after_a_timeout_carries_the_same_client_msg_id(rig: Rig) -> None:
    rig.wechat.queue("template_send", TimeoutError())
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    assert envelope["result"] is True
    first, second = rig.bodies()
    assert first == second
    assert first["client_msg_id"]


async def test_send_retried_after_system_busy_carries_the_same_client_msg_id(rig: Rig) -> None:
    rig.wechat.queue("template_send", {"errcode": -1, "errmsg": "system error"})
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA})
    first, second = rig.bodies()
    assert first["client_msg_id"] == second["client_msg_id"]


async def test_bluekings_retry_of_the_same_call_carries_the_same_client_msg_id(rig: Rig) -> None:
    first = await msg_id(rig)
    rig.clock.now += 45  # the caller timed out and called again
    assert await msg_id(rig) == first


async def test_retry_across_a_window_boundary_keeps_the_client_msg_id(rig: Rig) -> None:
    rig.clock.now = T0 - (T0 % 600) + 590  # ten seconds before a new 10-minute window
    first = await msg_id(rig)
    rig.clock.now += 30
    assert await msg_id(rig) == first


async def test_same_alert_an_hour_later_is_a_new_message(rig: Rig) -> None:
    first = await msg_id(rig)
    rig.clock.now += 3600
    assert await msg_id(rig) != first


async def test_replicas_agree_within_a_window(make_rig: RigFactory) -> None:
    one = await make_rig()
    other = await make_rig()
    one.clock.now = other.clock.now = T0 - (T0 % 600) + 10
    first = await msg_id(one)
    other.clock.now += 120
    assert await msg_id(other) == first


async def test_different_content_is_a_different_message(rig: Rig) -> None:
    first = await msg_id(rig)
    assert await msg_id(rig, data={**DATA, "message": "host-1 /var at 98%"}) != first


async def test_different_openids_get_different_ids(rig: Rig) -> None:
    assert await msg_id(rig, "o1") != await msg_id(rig, "o2")


async def test_defaulted_date_does_not_change_the_id(rig: Rig) -> None:
    first = await msg_id(rig)
    rig.clock.now += 120  # the default date (send time) moves on; the caller's content did not
    assert rig.bodies()[-1]["data"]["time3"] != {"value": ""}
    assert await msg_id(rig) == first


async def test_idempotency_key_names_the_send(rig: Rig) -> None:
    first = await msg_id(rig, idempotency_key="alert-42")
    rig.clock.now += 3600
    assert await msg_id(rig, idempotency_key="alert-42") == first
    assert await msg_id(rig, idempotency_key="alert-43") != first


async def test_idempotency_key_header_works_like_the_parameter(rig: Rig) -> None:
    by_param = await msg_id(rig, idempotency_key="k-1")
    await rig.send("send_weixin", json={"receiver": "o1", "data": DATA}, headers={"Idempotency-Key": "k-1"})
    assert rig.bodies()[-1]["client_msg_id"] == by_param


async def test_overlong_idempotency_key_is_refused(rig: Rig) -> None:
    envelope = await rig.send("send_weixin", json={"receiver": "o1", "data": DATA, "idempotency_key": "k" * 129})
    assert envelope["message"] == "idempotency key [idempotency_key] Ensure this value has at most 128 characters."
