"""Fault injection over the admin API: errcodes, latency, dropped connections, token revocation."""

import time

import aiohttp
import pytest

from tests.devtools.conftest import APPID, SECRET, mp_token, wecom_token

TOKEN_PARAMS = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
QR = {"action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 1}}}


async def fault(emu, **spec):
    resp = await emu.post("/_emu/faults", json=spec)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def fetch_token(emu):
    return await (await emu.get("/cgi-bin/token", params=TOKEN_PARAMS)).json()


async def test_errcode_fault_answers_the_next_n_calls_then_clears(emu):
    await fault(emu, path="/cgi-bin/token", kind="errcode", errcode=-1, times=2)
    first, second, third = [await fetch_token(emu) for _ in range(3)]
    assert first["errcode"] == second["errcode"] == -1
    assert first["errmsg"].startswith("system error")
    assert "access_token" in third
    assert (await (await emu.get("/_emu/faults")).json())["faults"] == []


async def test_errcode_fault_45009_only_hits_its_path(emu):
    await fault(emu, path="/cgi-bin/message/send", kind="errcode", errcode=45009)
    token = await wecom_token(emu)
    body = {"touser": "bob", "agentid": 1000002, "msgtype": "text", "text": {"content": "x"}}
    resp = await emu.post("/cgi-bin/message/send", params={"access_token": token}, json=body)
    assert (await resp.json())["errcode"] == 45009


async def test_faulted_call_is_not_served(emu):
    await fault(emu, path="/cgi-bin/token", kind="errcode", errcode=-1)
    await fetch_token(emu)
    counts = (await (await emu.get("/_emu/tokens")).json())["counts"]
    assert counts == {}


async def test_latency_fault_delays_the_answer(emu):
    await fault(emu, path="*", kind="latency", latency_s=0.3)
    started = time.monotonic()
    body = await fetch_token(emu)
    assert time.monotonic() - started >= 0.3
    assert "access_token" in body


async def test_drop_fault_closes_the_connection_without_answering(emu):
    await fault(emu, path="/cgi-bin/token", kind="drop")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await emu.get("/cgi-bin/token", params=TOKEN_PARAMS)
    assert "access_token" in await fetch_token(emu)


async def test_faults_are_recorded_in_the_call_log(emu):
    await fault(emu, path="/cgi-bin/token", kind="errcode", errcode=45009)
    await fetch_token(emu)
    [call] = (await (await emu.get("/_emu/calls")).json())["calls"]
    assert (call["fault"], call["errcode"]) == ("errcode", 45009)


async def test_fault_until_cleared_persists_and_delete_clears(emu):
    await fault(emu, path="/cgi-bin/token", kind="errcode", errcode=-1, times=None)
    for _ in range(3):
        assert (await fetch_token(emu))["errcode"] == -1
    assert (await (await emu.delete("/_emu/faults")).json()) == {"cleared": 1}
    assert "access_token" in await fetch_token(emu)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"path": "no-slash", "kind": "drop"},
        {"path": "/_emu/reset", "kind": "drop"},
        {"kind": "drop", "times": 0},
        {"kind": "latency"},
        {"kind": "errcode", "errcode": "busy"},
    ],
)
async def test_bad_fault_spec_is_refused_with_a_reason(emu, spec):
    resp = await emu.post("/_emu/faults", json=spec)
    assert resp.status == 400 and (await resp.json())["error"]


@pytest.mark.parametrize("errcode", [40001, 42001])
async def test_revoke_makes_live_tokens_fail_with_the_chosen_errcode(emu, errcode):
    token = await mp_token(emu)
    assert (await (await emu.post("/_emu/tokens/revoke", json={"errcode": errcode})).json())["revoked"] == 1
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=QR)
    assert (await resp.json())["errcode"] == errcode


async def test_revoke_then_refetch_works_again(emu):
    await mp_token(emu)
    await emu.post("/_emu/tokens/revoke", json={})
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": await mp_token(emu)}, json=QR)
    assert "ticket" in await resp.json()


async def test_revoke_forces_wecom_to_issue_a_new_token(emu):
    old = await wecom_token(emu)
    await emu.post("/_emu/tokens/revoke", json={"app": "ww0123456789abcdef"})
    assert await wecom_token(emu) != old


async def test_reset_clears_faults_tokens_and_records(emu):
    token = await mp_token(emu)
    await fault(emu, path="*", kind="errcode", times=None)
    await emu.post("/_emu/users/dave/follow", json={})
    assert (await (await emu.post("/_emu/reset")).json()) == {"ok": True}
    assert (await (await emu.get("/_emu/faults")).json())["faults"] == []
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=QR)
    assert (await resp.json())["errcode"] == 40001
    users = {u["name"]: u for u in (await (await emu.get("/_emu/users")).json())["users"]}
    assert users["dave"]["follows"] == []
