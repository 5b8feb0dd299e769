"""MP binding end to end: link → page → get_qrcode → scan event through the relay → bound."""

from __future__ import annotations

import re
from urllib.parse import unquote

from sidecar import housekeeping
from sidecar.binding import texts
from sidecar.binding.service import SCENE_RE
from sidecar.keys import CONFIG
from tests.sidecar.binding.conftest import Rig, RigFactory, scan_message

ALICE_OPENID = "oAlice0001"


async def test_mp_flow_link_page_scan_binds_and_status_turns_true(rig: Rig) -> None:
    envelope = await rig.link("alice")
    assert (await rig.open(envelope["data"]["url"])).status == 303
    page = await rig.client.get("/bind/")
    assert page.status == 200 and "<svg" in await page.text()
    assert (await rig.console("get_bind_status/"))[1]["result"] is False

    scene = await rig.qrcode()
    assert await rig.scan(scene, openid=ALICE_OPENID) == texts.BIND_OK

    assert (await rig.console("get_bind_status/"))[1]["result"] is True
    binding = await rig.store.bindings.get("main", "alice")
    assert binding is not None and binding.wx_id == ALICE_OPENID and binding.active


async def test_get_qrcode_asks_wechat_for_a_temporary_string_scene_code(alice: Rig) -> None:
    await alice.qrcode()
    body = alice.wechat.of("qrcode_create")[-1].body
    assert body is not None
    assert body["action_name"] == "QR_STR_SCENE"
    assert body["expire_seconds"] == 600
    assert SCENE_RE.match(body["action_info"]["scene"]["scene_str"])


async def test_get_qrcode_scenes_are_random_per_call(alice: Rig) -> None:
    first = await alice.qrcode()
    second = await alice.qrcode()
    assert first != second


async def test_get_qrcode_url_is_a_local_svg_image_not_wechats(alice: Rig) -> None:
    status, body = await alice.console("mp/get_qrcode/")
    assert status == 200 and body["result"] is True
    assert body["url"].startswith("data:image/svg+xml")
    assert "weixin.qq.com" not in unquote(body["url"])  # the image is drawn, not fetched
    assert body["content"] == f"http://weixin.qq.com/q/{alice.last_scene()}"
    assert body["expires_in"] == 600


async def test_get_qrcode_offers_wechats_image_with_the_ticket_url_encoded(alice: Rig) -> None:
    alice.wechat.queue(
        "qrcode_create", {"ticket": "gQH47joAAAAA+/b=", "expire_seconds": 600, "url": "http://weixin.qq.com/q/x"}
    )
    _, body = await alice.console("mp/get_qrcode/")
    assert body["image_url"] == "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47joAAAAA%2B%2Fb%3D"


async def test_get_qrcode_wechat_failure_answers_blueking_message(alice: Rig) -> None:
    alice.wechat.queue("qrcode_create", {"errcode": 40013, "errmsg": "invalid appid"})
    status, body = await alice.console("mp/get_qrcode/")
    assert status == 200
    assert body == {"result": False, "message": "后台获取公众号二维码失败，请联系系统管理员检查微信配置"}


async def test_get_qrcode_answer_without_url_answers_blueking_message(alice: Rig) -> None:
    alice.wechat.queue("qrcode_create", {"ticket": "T", "expire_seconds": 600})
    _, body = await alice.console("mp/get_qrcode/")
    assert body["message"] == texts.QRCODE_FAILED


async def test_get_qrcode_when_already_bound_answers_no_need(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", ALICE_OPENID, now=alice.clock())
    _, body = await alice.console("mp/get_qrcode/")
    assert body == {"result": False, "message": "您已绑定微信，无需再绑定"}
    assert alice.wechat.count("qrcode_create") == 0


async def test_scan_by_follower_binds_with_scan_event(alice: Rig) -> None:
    scene = await alice.qrcode()
    assert await alice.scan(scene, openid=ALICE_OPENID, follower=True) == texts.BIND_OK
    assert (await alice.console("get_bind_status/"))[1]["result"] is True


async def test_scan_redelivered_answers_the_same_reply_and_binds_once(alice: Rig) -> None:
    scene = await alice.qrcode()
    first = await alice.scan(scene, openid=ALICE_OPENID, at=alice.clock())
    again = await alice.event(scan_message(scene, openid=ALICE_OPENID, follower=False, at=alice.clock()))
    assert first == texts.BIND_OK
    assert again["status"] == "duplicate" and again["reply"]["content"] == texts.BIND_OK


async def test_scan_same_code_again_by_same_user_answers_no_need(alice: Rig) -> None:
    scene = await alice.qrcode()
    await alice.scan(scene, openid=ALICE_OPENID)
    alice.clock.now += 5
    assert await alice.scan(scene, openid=ALICE_OPENID, follower=True) == texts.NO_NEED


async def test_scan_used_code_by_someone_else_is_refused(alice: Rig) -> None:
    scene = await alice.qrcode()
    await alice.scan(scene, openid=ALICE_OPENID)
    alice.clock.now += 5
    assert await alice.scan(scene, openid="oMallory01", follower=True) == texts.SCENE_USED
    binding = await alice.store.bindings.get("main", "alice")
    assert binding is not None and binding.wx_id == ALICE_OPENID


async def test_plain_subscribe_without_scene_gets_a_welcome(rig: Rig) -> None:
    message = {"ToUserName": "gh", "FromUserName": "oNew", "CreateTime": "1", "MsgType": "event", "Event": "subscribe"}
    result = await rig.event(message)
    assert result["status"] == "accepted"
    assert result["reply"]["content"] == texts.WELCOME


async def test_subscribe_with_empty_event_key_gets_a_welcome(rig: Rig) -> None:
    message = {"FromUserName": "oNew", "CreateTime": "1", "MsgType": "event", "Event": "subscribe", "EventKey": None}
    assert (await rig.event(message))["reply"]["content"] == texts.WELCOME


async def test_scan_of_unknown_binding_scene_answers_clearly(rig: Rig) -> None:
    assert await rig.scan("bind_" + "0" * 32, openid="oX", follower=True) == texts.SCENE_UNKNOWN


async def test_subscribe_with_unknown_binding_scene_answers_clearly(rig: Rig) -> None:
    assert await rig.scan("bind_" + "f" * 32, openid="oX") == texts.SCENE_UNKNOWN


async def test_scan_of_someone_elses_qr_code_is_left_alone(rig: Rig) -> None:
    assert await rig.scan("promo-2024", openid="oX", follower=True) is None


async def test_scan_of_malformed_binding_like_scene_is_left_alone(rig: Rig) -> None:
    assert await rig.scan("bind_1", openid="oX", follower=True) is None


async def test_subscribe_through_someone_elses_qr_code_gets_a_welcome(rig: Rig) -> None:
    assert await rig.scan("promo-2024", openid="oX") == texts.WELCOME


async def test_scan_after_expiry_answers_expired_and_binds_nothing(alice: Rig) -> None:
    scene = await alice.qrcode()
    alice.clock.now += 601
    assert await alice.scan(scene, openid=ALICE_OPENID) == texts.SCENE_EXPIRED
    assert await alice.store.bindings.get("main", "alice") is None


async def test_scan_made_in_time_but_relayed_late_still_binds(alice: Rig) -> None:
    scene = await alice.qrcode()
    scanned_at = alice.clock() + 100
    alice.clock.now += 900  # the sidecar was down; the gateway spooled the event
    assert await alice.scan(scene, openid=ALICE_OPENID, at=scanned_at) == texts.BIND_OK


async def test_scan_with_future_create_time_is_judged_by_processing_time(alice: Rig) -> None:
    scene = await alice.qrcode()
    alice.clock.now += 601
    assert await alice.scan(scene, openid=ALICE_OPENID, at=alice.clock() + 10_000) == texts.SCENE_EXPIRED


async def test_scan_when_user_already_bound_to_other_wechat_is_refused(alice: Rig) -> None:
    scene = await alice.qrcode()
    await alice.store.bindings.bind("main", "alice", "oAliceOld", now=alice.clock())
    assert await alice.scan(scene, openid=ALICE_OPENID) == "已经绑定了微信，请解绑后再重新绑定！"
    binding = await alice.store.bindings.get("main", "alice")
    assert binding is not None and binding.wx_id == "oAliceOld"


async def test_scan_with_wechat_id_bound_to_another_user_is_refused(alice: Rig) -> None:
    scene = await alice.qrcode()
    await alice.store.bindings.bind("main", "bob", ALICE_OPENID, now=alice.clock())
    assert await alice.scan(scene, openid=ALICE_OPENID) == "该微信号已经被绑定过了"
    assert await alice.store.bindings.get("main", "alice") is None


async def test_scan_from_openid_all_binds_nothing_and_says_why(alice: Rig) -> None:
    scene = await alice.qrcode()
    assert await alice.scan(scene, openid="@all") == texts.WX_ID_INVALID
    assert await alice.store.bindings.get("main", "alice") is None
    _, body = await alice.console("get_bind_status/")
    assert body == {"result": False, "status": "failed", "message": texts.WX_ID_INVALID}


async def test_scan_from_pipe_joined_openids_binds_nothing(alice: Rig) -> None:
    scene = await alice.qrcode()
    assert await alice.scan(scene, openid="oCarol|oBob") == texts.WX_ID_INVALID
    assert await alice.store.bindings.get("main", "alice") is None


async def test_refused_scan_shows_its_reason_in_bind_status(alice: Rig) -> None:
    scene = await alice.qrcode()
    await alice.store.bindings.bind("main", "bob", ALICE_OPENID, now=alice.clock())
    await alice.scan(scene, openid=ALICE_OPENID)
    _, body = await alice.console("get_bind_status/")
    assert body == {"result": False, "status": "failed", "message": texts.WX_ID_TAKEN}


async def test_bind_status_reports_expired_attempt(alice: Rig) -> None:
    await alice.qrcode()
    alice.clock.now += 601
    _, body = await alice.console("get_bind_status/")
    assert body["result"] is False and body["status"] == "expired"


async def test_resubscribe_through_binding_code_reactivates_inactive_binding(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", ALICE_OPENID, now=alice.clock())
    unsubscribe = {"FromUserName": ALICE_OPENID, "CreateTime": "2", "MsgType": "event", "Event": "unsubscribe"}
    await alice.event(unsubscribe)
    assert (await alice.console("get_bind_status/"))[1]["result"] is False  # inactive: not reachable
    scene = await alice.qrcode()  # an inactive binding may scan again to re-follow
    assert await alice.scan(scene, openid=ALICE_OPENID) == texts.BIND_OK
    binding = await alice.store.bindings.get("main", "alice")
    assert binding is not None and binding.active


async def test_scan_on_another_account_does_not_find_the_scene(make_rig: RigFactory) -> None:
    rig = await make_rig(
        extra='[[accounts]]\nname = "second"\nkind = "mp"\napp_id = "wx2"\napp_secret = "s2"\ntemplate_id = "t2"\n'
    )
    await rig.sign_in("alice")
    scene = await rig.qrcode()
    result = await rig.event(scan_message(scene, openid=ALICE_OPENID, follower=False, at=rig.clock()), account="second")
    assert result["reply"]["content"] == texts.SCENE_UNKNOWN


async def test_expired_attempts_are_purged_by_housekeeping_a_day_later(alice: Rig) -> None:
    scene = await alice.qrcode()
    later = alice.clock() + 600 + housekeeping.EXPIRED_KEEP_S + 1
    removed = await housekeeping.purge_once(alice.store, alice.app[CONFIG], later)
    assert removed["binding_sessions"] == 1
    assert await alice.store.binding_attempts.by_scene("main", scene) is None


def test_scene_format_is_prefix_and_128_random_bits() -> None:
    from sidecar.binding.service import new_scene

    scenes = {new_scene() for _ in range(100)}
    assert len(scenes) == 100
    assert all(re.fullmatch(r"bind_[0-9a-f]{32}", s) for s in scenes)
    assert all(len(s) <= 64 for s in scenes)  # WeChat's scene_str limit
