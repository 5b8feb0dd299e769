"""A running sidecar (real TCP port, real clock) with a WeChat stand-in, and headless Chromium.

Browser tests are marked ``browser`` and skipped, with the reason, only when no chromium binary
is installed. Screenshots go to ``tmp_path``; with ``UPDATE_SCREENSHOTS=1`` they are written to
docs/screenshots/ instead, to be looked at and committed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contract import PUSH_PATH, RelaySigner, dump_json, make_envelope
from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.keys import STORE
from sidecar.store import Store
from tests.browser.cdp import Browser, chromium_path, launch
from tests.sidecar.helpers import CLIENT_SECRET, RELAY_SECRET, write_config

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"

pytestmark = pytest.mark.browser


@dataclass
class WeChatStandIn:
    """The few WeChat APIs binding needs, as a real HTTP server on 127.0.0.1."""

    scenes: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/mp/cgi-bin/stable_token", self.token)
        app.router.add_post("/mp/cgi-bin/qrcode/create", self.qrcode)
        app.router.add_get("/wecom/cgi-bin/gettoken", self.token)
        app.router.add_get("/wecom/cgi-bin/auth/getuserinfo", self.userinfo)
        return app

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "TOKEN-browser-test", "expires_in": 7200})

    async def qrcode(self, request: web.Request) -> web.Response:
        body = await request.json()
        scene = body["action_info"]["scene"]["scene_str"]
        self.scenes.append(scene)
        return web.json_response(
            {
                "ticket": f"gQH47joAAAAAAAAAASxodHRw+{scene}==",
                "expire_seconds": body["expire_seconds"],
                "url": f"http://weixin.qq.com/q/02{scene[5:29]}",
            }
        )

    async def userinfo(self, request: web.Request) -> web.Response:
        if request.query.get("code") == "BAD":
            return web.json_response({"errcode": 40029, "errmsg": "invalid code"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "userid": "zhangsan"})


@dataclass
class Stack:
    base: str
    app: web.Application
    http: aiohttp.ClientSession
    wechat: WeChatStandIn

    @property
    def store(self) -> Store:
        return self.app[STORE]

    async def link(self, username: str, **extra: str) -> str:
        body = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET, "username": username, **extra}
        async with self.http.post(self.base + "/api/v1/binding-links", json=body) as response:
            envelope = await response.json()
        assert envelope["result"], envelope
        url: str = envelope["data"]["url"]
        return url

    async def scan(self, scene: str, openid: str, *, follower: bool = False) -> str | None:
        """A WeChat user scans; the event arrives through the relay endpoint, signed."""
        message: dict[str, Any] = {
            "ToUserName": "gh_test",
            "FromUserName": openid,
            "CreateTime": str(int(datetime.now(UTC).timestamp())),
            "MsgType": "event",
            "Event": "SCAN" if follower else "subscribe",
            "EventKey": scene if follower else f"qrscene_{scene}",
        }
        envelope = make_envelope("main", "mp", "safe", message, datetime.now(UTC))
        body = dump_json({"events": [envelope]})
        async with self.http.post(
            self.base + PUSH_PATH, data=body, headers=RelaySigner([RELAY_SECRET]).headers(body)
        ) as r:
            assert r.status == 200
            reply = (await r.json())["results"][0]["reply"]
        return None if reply is None else str(reply["content"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "screenshots"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    if chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    async with launch(tmp_path / "chromium-profile") as running:
        yield running


@pytest.fixture
async def stack(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Stack]:
    standin = WeChatStandIn()
    wechat: TestServer = await aiohttp_server(standin.app())
    fake = str(wechat.make_url("")).rstrip("/")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_toml = f'[server]\nlisten = "127.0.0.1:{port}"\npublic_url = "{base}"\n'
    wechat_toml = f'[wechat]\nmp_api = "{fake}/mp"\nwecom_api = "{fake}/wecom"\ntimeout_s = 5\n'
    config = load_config(write_config(tmp_path, replace={"server": server_toml, "wechat": wechat_toml}))
    app = create_app(config)
    await aiohttp_server(app, port=port)
    async with aiohttp.ClientSession() as http:
        yield Stack(base, app, http, standin)
