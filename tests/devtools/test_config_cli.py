"""The emulator's config file (JSON or TOML, strict) and its command line."""

import asyncio
import json
import sys

import aiohttp
import pytest

from devtools.emulator import EmulatorConfig, MpApp, User, load_config
from devtools.emulator.errors import ConfigError
from tests.devtools.conftest import AES_KEY, CORP_AES_KEY

TOML = f"""
listen = "127.0.0.1:0"

[timing]
push_timeout_s = 2.5
token_overlap_s = 60

[[mp_apps]]
appid = "wxapp"
secret = {{ env = "EMU_TEST_SECRET" }}
token = "tok"
encoding_aes_key = "{AES_KEY}"
mode = "safe"
original_id = "gh_abc"
callback_url = "http://127.0.0.1:8080/wechat/main/callback"

[[mp_apps.templates]]
template_id = "tpl"
title = "告警通知"
fields = {{ first = "", thing1 = "告警内容", time2 = "时间" }}

[[wecom_corps]]
corpid = "wwcorp"
members = ["bob"]

[[wecom_corps.agents]]
agentid = 1000002
secret = "corpsecret"
token = "ctok"
encoding_aes_key = "{CORP_AES_KEY}"

[[users]]
name = "alice"
follows = ["wxapp"]
openids = {{ wxapp = "o_alice_fixed_openid_00000000" }}
"""


def test_toml_config_loads_every_section(tmp_path, monkeypatch):
    monkeypatch.setenv("EMU_TEST_SECRET", "s3cret")
    path = tmp_path / "emu.toml"
    path.write_text(TOML, encoding="utf-8")
    config = load_config(path)
    app = config.mp_apps[0]
    assert (app.secret, app.mode) == ("s3cret", "safe")
    assert (config.timing.push_timeout_s, config.timing.token_overlap_s) == (2.5, 60)
    assert app.templates[0].fields == (("first", "first"), ("thing1", "告警内容"), ("time2", "时间"))
    assert config.wecom_corps[0].agents[0].agentid == 1000002
    assert config.users[0].openids == {"wxapp": "o_alice_fixed_openid_00000000"}
    assert "s3cret" not in repr(config)


def test_json_config_with_template_field_list_loads(tmp_path):
    data = {
        "mp_apps": [
            {"appid": "wx1", "secret": "s", "token": "t", "original_id": "gh_1",
             "templates": [{"template_id": "tpl", "fields": ["keyword1", "keyword2"]}]}
        ]
    }  # fmt: skip
    path = tmp_path / "emu.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_config(path).mp_apps[0].templates[0].fields == (("keyword1", "keyword1"), ("keyword2", "keyword2"))


def test_config_reports_every_problem_with_its_key(tmp_path):
    data = {
        "listn": "x",
        "mp_apps": [{"appid": "wx1", "secret": "s", "token": "t", "original_id": "x_1", "mode": "secure"}],
        "users": [{"name": "a", "follows": ["wx-unknown"]}],
    }
    path = tmp_path / "emu.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    problems = "\n".join(raised.value.problems)
    assert "listn: unknown key" in problems
    assert "mp_apps[0].mode: must be one of plain, compat, safe" in problems


def test_config_cross_checks_after_parsing(tmp_path):
    data = {"mp_apps": [{"appid": "wx1", "secret": "s", "token": "t", "original_id": "x_1", "mode": "safe"}]}
    path = tmp_path / "emu.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert any("original_id: must start with gh_" in p for p in raised.value.problems)
    assert any("encoding_aes_key" in p for p in raised.value.problems)


async def test_cli_prints_base_url_and_serves_until_terminated(tmp_path):
    path = tmp_path / "emu.json"
    path.write_text(json.dumps({"users": [{"name": "alice"}]}), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.emulator", "--config", str(path), "--listen", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert line["pid"] == proc.pid
        async with aiohttp.ClientSession() as session, session.get(line["base_url"] + "/_emu/health") as resp:
            assert await resp.json() == {"ok": True}
    finally:
        proc.terminate()
        await proc.communicate()
    assert proc.returncode == 0


async def test_cli_bad_config_exits_2_with_one_line_per_problem(tmp_path):
    path = tmp_path / "emu.json"
    path.write_text(json.dumps({"bogus": 1, "users": [{"nam": "x"}]}), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.emulator", "--config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2 and out == b""
    assert "emulator config: bogus: unknown key" in lines
    assert any("users[0].name: is required" in line for line in lines)


def test_config_refuses_one_openid_for_two_users():
    app = MpApp(appid="wx1", secret="s", token="t", original_id="gh_1")
    users = (User(name="a", openids={"wx1": "o1"}), User(name="b", openids={"wx1": "o1"}))
    with pytest.raises(ConfigError, match="openid 'o1' of wx1 is given to two users"):
        EmulatorConfig(mp_apps=(app,), users=users)
