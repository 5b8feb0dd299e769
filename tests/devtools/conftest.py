"""Fixtures for the emulator's tests: a small world, a fake clock, and a callback server to push to."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from devtools.emulator import EmulatorConfig, MpApp, Template, Timing, User, WecomAgent, WecomCorp, create_app

APPID = "wx1234567890abcdef"
SECRET = "mp-app-secret-0123456789abcdef01"
TOKEN = "mptoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
GH = "gh_0123456789ab"
TEMPLATE_ID = "tpl-alert-0001"
CORPID = "ww0123456789abcdef"
AGENTID = 1000002
CORP_SECRET = "corp-secret-0123456789abcdef0123"
CORP_TOKEN = "corptoken"
CORP_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


Responder = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


async def answer_success(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.Response(text="success")


@dataclass
class CallbackServer:
    """Stands in for the gateway: records every request, answers with ``responder``."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    responder: Responder = answer_success
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, dict(request.query), body))
        return await self.responder(request, body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def callback(aiohttp_server: Any) -> CallbackServer:
    server = CallbackServer()
    app = web.Application()
    app.router.add_route("*", "/cb", server.handle)
    started = await aiohttp_server(app)
    server.url = str(started.make_url("/cb"))
    return server


def make_config(callback_url: str = "", mode: str = "plain", **timing: Any) -> EmulatorConfig:
    template = Template(
        template_id=TEMPLATE_ID,
        title="告警通知",
        fields=(("first", "first"), ("thing1", "告警内容"), ("time2", "时间"), ("remark", "remark")),
    )
    app = MpApp(
        appid=APPID,
        secret=SECRET,
        token=TOKEN,
        original_id=GH,
        mode=mode,  # type: ignore[arg-type]
        encoding_aes_key=AES_KEY,
        callback_url=callback_url,
        templates=(template,),
    )
    corp = WecomCorp(
        corpid=CORPID,
        agents=(
            WecomAgent(
                agentid=AGENTID,
                secret=CORP_SECRET,
                token=CORP_TOKEN,
                encoding_aes_key=CORP_AES_KEY,
                callback_url=callback_url,
            ),
        ),
        members=("carol",),
    )
    users = (
        User(name="alice", follows=(APPID,)),
        User(name="bob", wecom={CORPID: "bob"}),
        User(name="dave"),
    )
    base = {"push_timeout_s": 0.5, "verify_timeout_s": 0.5}
    return EmulatorConfig(
        mp_apps=(app,), wecom_corps=(corp,), users=users, timing=dataclasses.replace(Timing(), **{**base, **timing})
    )


@pytest.fixture
def config(callback: CallbackServer) -> EmulatorConfig:
    return make_config(callback.url)


@pytest.fixture
async def emu(aiohttp_client: Any, config: EmulatorConfig, clock: FakeClock) -> Any:
    """A test client for the emulator app, on the fake clock."""
    return await aiohttp_client(create_app(config, clock=clock))


async def mp_token(emu: Any) -> str:
    resp = await emu.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET})
    return str((await resp.json())["access_token"])


async def wecom_token(emu: Any) -> str:
    resp = await emu.get("/cgi-bin/gettoken", params={"corpid": CORPID, "corpsecret": CORP_SECRET})
    return str((await resp.json())["access_token"])


async def openid_of(emu: Any, name: str) -> str:
    resp = await emu.get("/_emu/users")
    users = {u["name"]: u for u in (await resp.json())["users"]}
    return str(users[name]["openids"][APPID])
