"""The send API against the WeChat emulator over real loopback HTTP: WeChat accepts what we send.

The emulator validates bodies as WeChat does (template data shape, client_msg_id dedupe, WeCom
agentid, recipients, duplicate check), so these tests catch shapes a mock would let through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from devtools.emulator import EmulatorConfig, MpApp, Template, User, WecomAgent, WecomCorp, run_emulator
from devtools.emulator.keys import WORLD
from devtools.emulator.records import Delivery
from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.keys import STORE
from tests.sidecar.esb.conftest import AUTH, Clock
from tests.sidecar.helpers import CORP_SECRET, MP_SECRET, write_config

APP_ID, CORP_ID, AGENT_ID = "wx1234567890abcdef", "ww1234567890", 1000002
AES_KEY = "a" * 43
EMULATED = EmulatorConfig(
    mp_apps=(
        MpApp(
            appid=APP_ID,
            secret=MP_SECRET,
            token="tok",
            original_id="gh_test",
            templates=(
                Template(
                    template_id="tmpl-1",
                    title="告警通知",
                    fields=(("thing1", "告警"), ("thing2", "内容"), ("time3", "时间")),
                ),
            ),
        ),
    ),
    wecom_corps=(
        WecomCorp(
            corpid=CORP_ID,
            agents=(WecomAgent(agentid=AGENT_ID, secret=CORP_SECRET, token="tok", encoding_aes_key=AES_KEY),),
            members=("bob", "carol"),
        ),
    ),
    users=(User(name="alice", openids={APP_ID: "o-alice"}, follows=(APP_ID,)),),
)
DATA = {"heading": "Disk full", "message": "host-1 /var at 97%"}


class Live:
    def __init__(self, client: TestClient[web.Request, web.Application], emulator: web.Application) -> None:
        self.client = client
        self.emulator = emulator

    async def send(self, component: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"/api/c/compapi/cmsi/{component}/", json={**AUTH, **body})
        result: dict[str, Any] = await response.json()
        return result

    def deliveries(self) -> list[Delivery]:
        return list(self.emulator[WORLD].records.deliveries)


@pytest.fixture
async def live(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Live]:
    async with run_emulator(EMULATED) as emu:
        wechat = f'[wechat]\nmp_api = "{emu.base_url}"\nwecom_api = "{emu.base_url}"\ntimeout_s = 5\n'
        config = load_config(write_config(tmp_path, replace={"wechat": wechat}))
        app = create_app(config, clock=Clock(), http_session_factory=aiohttp.ClientSession)
        client = await aiohttp_client(app)
        yield Live(client, emu.app)


async def test_template_message_reaches_the_phone(live: Live) -> None:
    envelope = await live.send("send_weixin", {"receiver": "o-alice", "data": DATA})
    assert envelope["result"] is True, envelope
    [delivery] = live.deliveries()
    assert (delivery.person, delivery.channel, delivery.status) == ("alice", "mp.template", "delivered")
    assert [f["value"] for f in delivery.detail["fields"]][:2] == ["Disk full", "host-1 /var at 97%"]
    assert delivery.detail["unknown_keys"] == []


async def test_repeated_call_is_deduplicated_by_wechat(live: Live) -> None:
    await live.send("send_weixin", {"receiver": "o-alice", "data": DATA})
    envelope = await live.send("send_weixin", {"receiver": "o-alice", "data": DATA})
    assert envelope["result"] is True
    assert [d.status for d in live.deliveries()] == ["delivered", "duplicate"]


async def test_username_send_reaches_the_bound_openid(live: Live) -> None:
    await live.client.app[STORE].bindings.bind("main", "alice", "o-alice", now=0.0)
    envelope = await live.send(
        "send_msg", {"msg_type": "weixin", "receiver__username": "alice", "title": "t", "content": "c"}
    )
    assert envelope["result"] is True, envelope
    assert [d.person for d in live.deliveries()] == ["alice"]


async def test_unknown_openid_is_reported_by_wechat(live: Live) -> None:
    envelope = await live.send("send_weixin", {"receiver": "o-alice,o-nobody", "data": DATA})
    assert envelope["result"] is False
    assert (
        envelope["message"]
        == "WeChat message sending failed, invalid user: o-nobody (WeChat error 40003: invalid openid)"
    )
    assert envelope["data"]["sent"] == 1


@pytest.mark.parametrize("msgtype", ["text", "textcard", "markdown"])
async def test_wecom_message_of_each_type_reaches_the_members(live: Live, msgtype: str) -> None:
    body = {
        "receiver": "bob,carol",
        "data": DATA,
        "account": "corp",
        "wx_msg_type": msgtype,
        "url": "https://x.example/",
    }
    envelope = await live.send("send_weixin", body)
    assert envelope["result"] is True, envelope
    assert sorted((d.to, d.status) for d in live.deliveries()) == [("bob", "delivered"), ("carol", "delivered")]


async def test_wecom_invalid_member_is_reported(live: Live) -> None:
    envelope = await live.send("send_qy_weixin", {"receiver": "bob,mallory", "content": "hello"})
    assert envelope["message"] == "WeChat message sending failed, invalid user: mallory"
    assert [d.to for d in live.deliveries()] == ["bob"]
