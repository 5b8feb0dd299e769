"""A sidecar app over HTTP with a scripted WeChat: the rig every BlueKing API test drives.

``rig.send("send_weixin", json={...})`` posts like a BlueKing caller (app code + secret added
unless ``auth=False``) and returns the envelope; ``rig.wechat`` records what WeChat received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aioresponses import aioresponses

from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.keys import STORE
from sidecar.store import AuditRecord
from tests.sidecar.fakewechat import FakeWeChat
from tests.sidecar.helpers import CLIENT_SECRET, WECHAT, write_config

T0 = 1_700_000_000.0
AUTH = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}
FAST_RETRIES = WECHAT + "retry_backoff_s = 0\n"


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    client: TestClient[web.Request, web.Application]
    app: web.Application
    wechat: FakeWeChat
    clock: Clock

    async def send(
        self,
        component: str,
        *,
        method: str = "POST",
        json: dict[str, Any] | None = None,
        form: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        auth: bool = True,
        v2: bool = False,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """One call of a component; asserts BlueKing's HTTP 200 and returns the envelope."""
        path = f"/api/c/compapi/{'v2/' if v2 else ''}cmsi/{component}/"
        creds = AUTH if auth else {}
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if json is not None:
            kwargs["json"] = {**creds, **json}
        elif form is not None:
            kwargs["data"] = {**creds, **form}
        else:
            query = {**creds, **(query or {})}
        response = await self.client.request(method, path, params=query, **kwargs)
        assert response.status == 200
        envelope: dict[str, Any] = await response.json()
        assert len(envelope["request_id"]) == 32
        return envelope

    async def bind(self, username: str, wx_id: str, *, account: str = "main", active: bool = True) -> None:
        bindings = self.app[STORE].bindings
        await bindings.bind(account, username, wx_id, now=self.clock())
        if not active:
            await bindings.set_active_by_wx_id(account, wx_id, False, now=self.clock())

    async def audit(self) -> list[AuditRecord]:
        return list(reversed(await self.app[STORE].audit.list(limit=1000)))

    def bodies(self, api: str = "template_send") -> list[dict[str, Any]]:
        return [c.body or {} for c in self.wechat.of(api)]


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[RigFactory]:
    """Build rigs from the standard test config with sections replaced or TOML added.

    Rigs built in one test are replicas: they share the store (the same SQLite file) and WeChat.
    """
    passthrough: list[str] = []  # aioresponses keeps this list: each new test server is added
    with aioresponses(passthrough=passthrough) as mocked:
        wechat = FakeWeChat(mocked)

        async def build(*, replace: dict[str, str] | None = None, extra: str = "") -> Rig:
            sections = {"wechat": FAST_RETRIES, **(replace or {})}
            config = load_config(write_config(tmp_path, replace=sections, extra=extra))
            clock = Clock()
            app = create_app(config, clock=clock)
            client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
            passthrough.append(str(client.make_url("/")))
            return Rig(client, app, wechat, clock)

        yield build


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()
