"""The admin API's own behaviour: people, clock, inspection, and refusing bad requests."""

import asyncio
import dataclasses

import pytest

from devtools.emulator import create_app
from devtools.emulator.xmlmsg import parse_xml
from tests.devtools.conftest import APPID, CORPID, TEMPLATE_ID, make_config, mp_token, openid_of


async def test_config_view_lists_apps_and_people_without_secrets(emu):
    body = await (await emu.get("/_emu/config")).json()
    assert body["mp_apps"][0]["appid"] == APPID
    assert {u["name"] for u in body["users"]} == {"alice", "bob", "carol", "dave"}
    assert "secret" not in str(body).lower() and "token" not in str(body["mp_apps"]).lower()


async def test_configured_members_become_people(emu):
    users = {u["name"]: u for u in (await (await emu.get("/_emu/users")).json())["users"]}
    assert users["carol"]["wecom"] == {CORPID: "carol"}


async def test_generated_openids_are_stable_and_shaped_like_wechats(emu):
    openid = await openid_of(emu, "alice")
    await emu.post("/_emu/reset")
    assert await openid_of(emu, "alice") == openid
    assert openid.startswith("o") and len(openid) == 28


async def test_add_user_at_runtime(emu):
    resp = await emu.post("/_emu/users", json={"name": "erin", "follows": [APPID], "wecom": {CORPID: "erin"}})
    body = await resp.json()
    assert resp.status == 201 and body["follows"] == [APPID] and body["wecom"] == {CORPID: "erin"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "alice"}, 409),
        ({"name": "erin", "follows": ["wx-nope"]}, 404),
        ({"name": "erin", "wecom": {CORPID: "bob"}}, 409),
        ({"follows": []}, 400),
        ({"name": "erin", "follows": "wx"}, 400),
    ],
)
async def test_add_user_refuses_bad_requests(emu, body, status):
    assert (await emu.post("/_emu/users", json=body)).status == status


async def test_unknown_user_is_404(emu):
    resp = await emu.post("/_emu/users/nobody/follow", json={})
    assert resp.status == 404 and "nobody" in (await resp.json())["error"]


async def test_non_json_admin_body_is_400(emu):
    resp = await emu.post("/_emu/users/alice/text", data=b"{not json")
    assert resp.status == 400 and (await resp.json())["error"] == "the body is not JSON"


async def test_follow_twice_is_a_conflict(emu):
    assert (await emu.post("/_emu/users/alice/follow", json={})).status == 409


async def test_clock_advance_expires_tokens(emu):
    token = await mp_token(emu)
    body = await (await emu.post("/_emu/clock", json={"advance_s": 7200})).json()
    assert body["offset_s"] == 7200
    qr = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=qr)
    assert (await resp.json())["errcode"] == 42001


async def test_clock_refuses_going_back(emu):
    assert (await emu.post("/_emu/clock", json={"advance_s": -5})).status == 400


async def test_phones_show_each_persons_messages(emu):
    token = await mp_token(emu)
    body = {"touser": await openid_of(emu, "alice"), "template_id": TEMPLATE_ID, "data": {"thing1": {"value": "x"}}}
    await emu.post("/cgi-bin/message/template/send", params={"access_token": token}, json=body)
    phones = (await (await emu.get("/_emu/phones")).json())["phones"]
    assert [m["channel"] for m in phones["alice"]] == ["mp.template"]
    assert phones["bob"] == []


async def test_deliveries_since_returns_only_newer_records(emu):
    token = await mp_token(emu)
    body = {"touser": await openid_of(emu, "alice"), "template_id": TEMPLATE_ID, "data": {"thing1": {"value": "x"}}}
    await emu.post("/cgi-bin/message/template/send", params={"access_token": token}, json=body)
    [first] = (await (await emu.get("/_emu/deliveries")).json())["deliveries"]
    await emu.post("/cgi-bin/message/template/send", params={"access_token": token}, json=body)
    newer = (await (await emu.get("/_emu/deliveries", params={"since": first["seq"]})).json())["deliveries"]
    assert len(newer) == 1 and newer[0]["seq"] > first["seq"]


async def test_pushes_are_listed_with_outcomes(emu):
    await emu.post("/_emu/users/alice/text", json={"content": "x"})
    pushes = (await (await emu.get("/_emu/pushes", params={"person": "alice"})).json())["pushes"]
    assert [p["status"] for p in pushes] == ["acknowledged"]
    assert (await emu.get("/_emu/pushes/999999")).status == 404


async def test_template_job_finish_event_is_pushed_when_enabled(aiohttp_client, callback, clock):
    config = make_config(callback.url)
    app = dataclasses.replace(config.mp_apps[0], template_job_finish_event=True)
    emu = await aiohttp_client(create_app(dataclasses.replace(config, mp_apps=(app,)), clock=clock))
    body = {"touser": await openid_of(emu, "alice"), "template_id": TEMPLATE_ID, "data": {"thing1": {"value": "x"}}}
    params = {"access_token": await mp_token(emu)}
    sent = await (await emu.post("/cgi-bin/message/template/send", params=params, json=body)).json()
    for _ in range(100):
        if callback.requests:
            break
        await asyncio.sleep(0.02)
    fields = parse_xml(callback.requests[0][2])
    assert (fields["Event"], fields["MsgID"]) == ("TEMPLATESENDJOBFINISH", str(sent["msgid"]))
    assert fields["Status"] == "success"
