"""A sidecar app over HTTP, a scripted WeChat and a browser-like client: the binding test rig.

The rig drives binding the way people and systems do: a client app asks for a link, the
"browser" (the test client, which keeps cookies) opens it and the page, calls the console
endpoints, and WeChat's scan events arrive through the relay endpoint, signed like the gateway
signs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from aioresponses import aioresponses
from yarl import URL

from contract import PUSH_PATH, RelaySigner, dump_json, make_envelope
from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.keys import STORE
from sidecar.store import Store
from tests.sidecar.fakewechat import FakeWeChat
from tests.sidecar.helpers import CLIENT_SECRET, RELAY_SECRET, WECHAT, write_config

T0 = 1_700_000_000.0
AUTH = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}
CONSOLE = "/console/user_center/weixin/"
FAST_RETRIES = WECHAT + "retry_backoff_s = 0\n"


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    client: TestClient
    app: web.Application
    wechat: FakeWeChat
    clock: Clock

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def origin(self) -> str:
        return str(self.client.make_url("/").origin())

    async def link(self, username: str = "alice", **extra: str) -> dict[str, Any]:
        """``POST /api/v1/binding-links`` as the bk_paas app; the BlueKing envelope."""
        response = await self.client.post("/api/v1/binding-links", json={**AUTH, "username": username, **extra})
        assert response.status == 200
        envelope: dict[str, Any] = await response.json()
        return envelope

    async def open(self, url: str) -> ClientResponse:
        """Open a link like a browser would, without following the redirect."""
        return await self.client.get(URL(url).path_qs, allow_redirects=False)

    async def sign_in(self, username: str = "alice", **extra: str) -> None:
        envelope = await self.link(username, **extra)
        assert envelope["result"], envelope
        response = await self.open(envelope["data"]["url"])
        assert response.status == 303

    async def console(self, endpoint: str, **params: str) -> tuple[int, dict[str, Any]]:
        response = await self.client.get(CONSOLE + endpoint, params=params)
        return response.status, await response.json()

    async def unbind(self, *, origin: str | None = "", **params: str) -> tuple[int, dict[str, Any]]:
        headers = {} if origin is None else {"Origin": origin or self.origin}
        response = await self.client.post(CONSOLE + "unbind_wx_user_info/", params=params, headers=headers)
        return response.status, await response.json()

    async def qrcode(self, **params: str) -> str:
        """``get_qrcode`` must succeed; returns the scene WeChat was asked to encode."""
        status, body = await self.console("mp/get_qrcode/", **params)
        assert status == 200 and body["result"], body
        return self.last_scene()

    def last_scene(self) -> str:
        scene: str = self.wechat.of("qrcode_create")[-1].body["action_info"]["scene"]["scene_str"]  # type: ignore[index]
        return scene

    async def event(self, message: dict[str, Any], *, account: str = "main") -> dict[str, Any]:
        """Deliver one callback through ``POST /relay/v1/events`` as the gateway does; its result."""
        envelope = make_envelope(account, "mp", "safe", message, datetime(2026, 1, 1, tzinfo=UTC))
        body = dump_json({"events": [envelope]})
        headers = RelaySigner([RELAY_SECRET], clock=self.clock).headers(body)
        response = await self.client.post(PUSH_PATH, data=body, headers=headers)
        assert response.status == 200, await response.text()
        result: dict[str, Any] = (await response.json())["results"][0]
        return result

    async def scan(
        self, scene: str, *, openid: str = "oAlice0001", follower: bool = False, at: float | None = None
    ) -> str | None:
        """A WeChat user scans a code: ``SCAN`` for a follower, else ``subscribe``; the reply text."""
        message = scan_message(scene, openid=openid, follower=follower, at=self.clock() if at is None else at)
        reply = (await self.event(message))["reply"]
        return None if reply is None else str(reply["content"])


def scan_message(scene: str, *, openid: str, follower: bool, at: float) -> dict[str, Any]:
    return {
        "ToUserName": "gh_test",
        "FromUserName": openid,
        "CreateTime": str(int(at)),
        "MsgType": "event",
        "Event": "SCAN" if follower else "subscribe",
        "EventKey": scene if follower else f"qrscene_{scene}",
        "Ticket": f"TICKET-{scene}",
    }


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[RigFactory]:
    """Build a rig from the standard config plus a ``[binding]`` table (``binding`` TOML lines)."""
    with ExitStack() as stack:

        async def build(
            *,
            binding: str = "",
            replace: dict[str, str] | None = None,
            extra: str = "",
            passthrough: tuple[str, ...] = (),
        ) -> Rig:
            sections = {"wechat": FAST_RETRIES, **(replace or {})}
            text = extra + (f"\n[binding]\n{binding}\n" if binding else "")
            config = load_config(write_config(tmp_path, replace=sections, extra=text))
            clock = Clock()
            app = create_app(config, clock=clock)
            client: TestClient = await aiohttp_client(app)
            mocked = stack.enter_context(aioresponses(passthrough=[str(client.make_url("/")), *passthrough]))
            return Rig(client, app, FakeWeChat(mocked), clock)

        yield build


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()


@pytest.fixture
async def alice(rig: Rig) -> Rig:
    """The rig with the browser signed in as alice (through a binding link) on the MP account."""
    await rig.sign_in("alice")
    return rig
