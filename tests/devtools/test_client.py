"""The Python side for out-of-process users: run_emulator, EmulatorClient, spawn_emulator, config_to_dict."""

import json

import aiohttp
import pytest

from devtools.emulator import run_emulator
from devtools.emulator.client import EmulatorClient, EmulatorClientError, spawn_emulator
from devtools.emulator.config import config_to_dict, load_config
from tests.devtools.conftest import APPID, CORPID, SECRET, TEMPLATE_ID, make_config


def test_config_round_trips_through_the_file_format(tmp_path):
    config = make_config("http://127.0.0.1:9/cb", mode="safe")
    path = tmp_path / "emu.json"
    path.write_text(json.dumps(config_to_dict(config)), encoding="utf-8")
    assert load_config(path) == config


async def test_run_emulator_serves_on_a_free_loopback_port(callback):
    async with run_emulator(make_config(callback.url)) as emu, aiohttp.ClientSession() as session:
        assert emu.base_url.startswith("http://127.0.0.1:")
        params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
        async with session.get(emu.base_url + "/cgi-bin/token", params=params) as resp:
            assert "access_token" in await resp.json()
        assert emu.world.tokens.snapshot() == {APPID: {"token": 1}}


async def test_client_drives_people_and_reads_phones(callback):
    async with run_emulator(make_config(callback.url)) as emu, EmulatorClient(emu.base_url) as client:
        outcome = await client.follow("dave")
        assert outcome["status"] == "acknowledged"
        login = await client.wecom_login("bob", redirect_uri="http://h/cb", state="s")
        assert login["userid"] == "bob" and login["redirect_url"].startswith("http://h/cb?code=")
        async with aiohttp.ClientSession() as session:
            params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
            async with session.get(emu.base_url + "/cgi-bin/token", params=params) as resp:
                token = (await resp.json())["access_token"]
            openid = next(u for u in await client.users() if u["name"] == "dave")["openids"][APPID]
            body = {"touser": openid, "template_id": TEMPLATE_ID, "data": {"thing1": {"value": "磁盘满"}}}
            url = emu.base_url + "/cgi-bin/message/template/send"
            async with session.post(url, params={"access_token": token}, json=body) as resp:
                assert (await resp.json())["errcode"] == 0
        assert [m["channel"] for m in await client.phone("dave")] == ["mp.template"]
        assert (await client.token_counts())[APPID]["token"] == 1


async def test_client_raises_with_the_admin_error(callback):
    async with run_emulator(make_config(callback.url)) as emu, EmulatorClient(emu.base_url) as client:
        with pytest.raises(EmulatorClientError) as raised:
            await client.text("bob", "hi", corp=CORPID, agentid=1)
        assert raised.value.status == 404 and "agent" in raised.value.error


async def test_spawn_emulator_runs_the_cli_and_stops_it(tmp_path):
    path = tmp_path / "emu.json"
    path.write_text(json.dumps(config_to_dict(make_config())), encoding="utf-8")
    async with spawn_emulator(path) as base_url, EmulatorClient(base_url) as client:
        assert await client.health() == {"ok": True}
        assert {u["name"] for u in await client.users()} == {"alice", "bob", "carol", "dave"}
