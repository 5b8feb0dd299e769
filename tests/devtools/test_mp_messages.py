"""MP template messages, customer-service messages and QR codes, validated as WeChat does."""

import pytest

from tests.devtools.conftest import APPID, TEMPLATE_ID, mp_token, openid_of


def template_body(openid, **overrides):
    body = {
        "touser": openid,
        "template_id": TEMPLATE_ID,
        "url": "http://paas.example.com/alert/1",
        "data": {
            "first": {"value": "您有一条新告警"},
            "thing1": {"value": "CPU usage above 95% on host-a 🔥 for ten minutes", "color": "#FF0000"},
            "time2": {"value": "2024-05-01 10:00"},
            "remark": {"value": "请及时处理"},
        },
    }
    body.update(overrides)
    return body


async def send_template(emu, body, token=None):
    token = token or await mp_token(emu)
    resp = await emu.post("/cgi-bin/message/template/send", params={"access_token": token}, json=body)
    return await resp.json()


async def deliveries(emu, **filters):
    return (await (await emu.get("/_emu/deliveries", params=filters)).json())["deliveries"]


async def test_template_send_to_follower_answers_msgid_and_shows_on_phone(emu):
    alice = await openid_of(emu, "alice")
    body = await send_template(emu, template_body(alice))
    assert body["errcode"] == 0 and body["errmsg"] == "ok" and isinstance(body["msgid"], int)
    phone = (await (await emu.get("/_emu/phones/alice")).json())["messages"]
    assert [m["channel"] for m in phone] == ["mp.template"]
    assert phone[0]["text"].splitlines()[0] == "告警通知"


async def test_template_send_applies_2023_display_rules(emu):
    alice = await openid_of(emu, "alice")
    await send_template(emu, template_body(alice))
    [shown] = await deliveries(emu, person="alice")
    fields = {f["key"]: f["value"] for f in shown["detail"]["fields"]}
    assert set(fields) == {"thing1", "time2"}  # first and remark are no longer shown
    assert fields["thing1"] == "CPU usage above 95% "  # emoji stripped, thing truncated to 20
    assert "您有一条新告警" not in shown["text"] and "请及时处理" not in shown["text"]


async def test_template_send_to_unsubscribed_user_answers_43004(emu):
    assert (await send_template(emu, template_body(await openid_of(emu, "dave"))))["errcode"] == 43004


async def test_template_send_to_unknown_openid_answers_40003(emu):
    assert (await send_template(emu, template_body("o" + "x" * 27)))["errcode"] == 40003


async def test_template_send_without_touser_answers_40003(emu):
    body = template_body("")
    del body["touser"]
    assert (await send_template(emu, body))["errcode"] == 40003


async def test_template_send_unknown_template_answers_40037(emu):
    body = template_body(await openid_of(emu, "alice"), template_id="tpl-nope")
    assert (await send_template(emu, body))["errcode"] == 40037


@pytest.mark.parametrize("data", [None, "text", {"thing1": "no value object"}, {"thing1": {"colour": "red"}}])
async def test_template_send_malformed_data_answers_47001(emu, data):
    body = template_body(await openid_of(emu, "alice"))
    if data is None:
        del body["data"]
    else:
        body["data"] = data
    assert (await send_template(emu, body))["errcode"] == 47001


async def test_template_send_non_json_body_answers_47001(emu):
    resp = await emu.post(
        "/cgi-bin/message/template/send", params={"access_token": await mp_token(emu)}, data=b"touser=x"
    )
    assert (await resp.json())["errcode"] == 47001


async def test_template_send_url_is_optional(emu):
    body = template_body(await openid_of(emu, "alice"))
    del body["url"]
    assert (await send_template(emu, body))["errcode"] == 0


async def test_template_send_repeated_client_msg_id_is_delivered_once(emu):
    body = template_body(await openid_of(emu, "alice"), client_msg_id="alert-1")
    first = await send_template(emu, body)
    second = await send_template(emu, body)
    assert first["errcode"] == second["errcode"] == 0
    assert second["msgid"] == first["msgid"]
    assert [d["status"] for d in await deliveries(emu, person="alice")] == ["delivered", "duplicate"]


async def test_template_send_client_msg_id_window_is_ten_minutes(emu, clock):
    body = template_body(await openid_of(emu, "alice"), client_msg_id="alert-1")
    token = await mp_token(emu)
    await send_template(emu, body, token)
    clock.advance(600)
    await send_template(emu, body, token)
    assert [d["status"] for d in await deliveries(emu, person="alice")] == ["delivered", "delivered"]


async def test_template_send_client_msg_id_is_per_openid(emu):
    token = await mp_token(emu)
    await emu.post("/_emu/users/dave/follow", json={})
    for name in ("alice", "dave"):
        await send_template(emu, template_body(await openid_of(emu, name), client_msg_id="same"), token)
    assert len(await deliveries(emu, status="delivered", channel="mp.template")) == 2


async def custom_send(emu, openid, content="hello"):
    body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
    resp = await emu.post("/cgi-bin/message/custom/send", params={"access_token": await mp_token(emu)}, json=body)
    return await resp.json()


async def test_custom_send_within_48_hours_of_interaction_is_delivered(emu, clock):
    await emu.post("/_emu/users/dave/follow", json={})
    clock.advance(47 * 3600)
    assert (await custom_send(emu, await openid_of(emu, "dave"), "你好"))["errcode"] == 0
    assert [d["text"] for d in await deliveries(emu, person="dave", channel="mp.custom")] == ["你好"]


async def test_custom_send_after_48_hours_answers_45015(emu, clock):
    await emu.post("/_emu/users/dave/follow", json={})
    clock.advance(48 * 3600 + 1)
    assert (await custom_send(emu, await openid_of(emu, "dave")))["errcode"] == 45015


async def test_custom_send_without_interaction_answers_45015(emu):
    assert (await custom_send(emu, await openid_of(emu, "alice")))["errcode"] == 45015


async def create_qr(emu, body):
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": await mp_token(emu)}, json=body)
    return await resp.json()


async def test_qrcode_create_str_scene_answers_ticket_expiry_and_url(emu):
    body = await create_qr(
        emu, {"expire_seconds": 600, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "bind:x"}}}
    )
    assert set(body) == {"ticket", "expire_seconds", "url"}
    assert body["expire_seconds"] == 600
    assert body["url"].startswith("http://weixin.qq.com/q/")


async def test_qrcode_create_caps_expiry_at_30_days(emu):
    body = await create_qr(
        emu, {"expire_seconds": 10**8, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}
    )
    assert body["expire_seconds"] == 2_592_000


async def test_qrcode_create_permanent_code_has_no_expiry(emu):
    body = await create_qr(emu, {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "s"}}})
    assert set(body) == {"ticket", "url"}


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"action_name": "QR_BOGUS", "action_info": {"scene": {"scene_id": 1}}}, 40052),
        ({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}}, 40053),
        ({"action_name": "QR_SCENE", "action_info": {"scene": {"scene_str": "abc"}}}, 40053),
        ({"action_name": "QR_SCENE", "action_info": {}}, 40053),
    ],
)
async def test_qrcode_create_bad_request_answers_errcode(emu, body, errcode):
    assert (await create_qr(emu, body))["errcode"] == errcode


async def test_showqrcode_serves_png_for_url_encoded_ticket(emu):
    body = await create_qr(emu, {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 9}}})
    resp = await emu.get("/cgi-bin/showqrcode", params={"ticket": body["ticket"]})
    assert resp.status == 200 and resp.content_type == "image/png"
    assert (await resp.read()).startswith(b"\x89PNG")


async def test_showqrcode_expired_ticket_is_404(emu, clock):
    qr = {"action_name": "QR_SCENE", "expire_seconds": 60, "action_info": {"scene": {"scene_id": 9}}}
    body = await create_qr(emu, qr)
    clock.advance(60)
    assert (await emu.get("/cgi-bin/showqrcode", params={"ticket": body["ticket"]})).status == 404


async def test_calls_are_logged_with_app_and_errcode(emu):
    await send_template(emu, template_body("o" + "x" * 27))
    calls = (await (await emu.get("/_emu/calls", params={"path": "/cgi-bin/message/template/send"})).json())["calls"]
    assert [(c["app"], c["errcode"]) for c in calls] == [(APPID, 40003)]
