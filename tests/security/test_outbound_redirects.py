"""No outbound request of either tier follows a redirect: an upstream cannot steer where we connect.

A followed redirect turns whoever answers into a router. The WeChat client would re-send a
``stable_token`` body, AppSecret included, to wherever a 307/308 points; the pull client would let
a compromised DMZ gateway send the sidecar to any intranet address (a 303 becomes a GET there).
So every outbound session refuses redirects, and a 3xx is one more unexpected answer.
(The gateway's push relay: tests/gateway/relay/test_push.py::test_push_does_not_follow_redirects.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from common.config import Secret
from sidecar.app import create_app, default_http_session
from sidecar.binding.identity import BkLogin
from sidecar.config import load_config
from sidecar.errors import WeChatUnavailable
from sidecar.metrics import SidecarMetrics
from sidecar.wechat.api import WeChatApi
from tests.security.servers import REDIRECTS, Recorder, ServerFactory, redirector
from tests.sidecar.helpers import config_text, write_config

APP_SECRET = "app-secret-that-must-stay-home"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The WeChat session honours HTTPS_PROXY; here it must talk to the loopback servers directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.mark.parametrize("status", REDIRECTS)
async def test_wechat_client_redirected_token_fetch_never_sends_the_secret_on(
    aiohttp_server: ServerFactory, recorder: Recorder, tmp_path: Path, status: int
) -> None:
    upstream = await aiohttp_server(redirector(recorder.url + "/cgi-bin/stable_token", status))
    base = str(upstream.make_url("")).rstrip("/")
    wechat = f'[wechat]\nmp_api = "{base}"\nwecom_api = "{base}"\ntimeout_s = 2\n'
    config = load_config(write_config(tmp_path, replace={"wechat": wechat}))
    async with default_http_session(config) as session:
        api = WeChatApi(session, config.wechat, SidecarMetrics())
        fetches = (
            lambda: api.mp_stable_token("wx1234567890abcdef", Secret(APP_SECRET)),
            lambda: api.mp_token_classic("wx1234567890abcdef", Secret(APP_SECRET)),
            lambda: api.wecom_gettoken("ww1234567890", Secret(APP_SECRET)),
        )
        for fetch in fetches:
            with pytest.raises(WeChatUnavailable, match=f"HTTP {status}"):
                await fetch()
    assert recorder.seen == []


@pytest.mark.parametrize("status", REDIRECTS)
async def test_pull_client_redirected_by_the_gateway_never_reaches_another_host(
    aiohttp_server: ServerFactory, aiohttp_client: object, recorder: Recorder, tmp_path: Path, status: int
) -> None:
    hits: list[str] = []

    async def hostile_lease(request: web.Request) -> web.Response:
        await request.read()
        hits.append(request.path)
        return web.Response(status=status, headers={"Location": recorder.url + "/intranet/admin"})

    gateway = web.Application()
    gateway.router.add_route("*", "/{tail:.*}", hostile_lease)
    server = await aiohttp_server(gateway)
    pull = f'mode = "pull"\npull_url = "{str(server.make_url("")).rstrip("/")}"\nbackoff_initial_s = 0.01'
    pull += "\nbackoff_max_s = 0.1"
    config = load_config(write_config(tmp_path, config_text().replace('mode = "push"', pull)))
    await aiohttp_client(create_app(config))  # type: ignore[operator]
    async with asyncio.timeout(10):
        while len(hits) < 3:
            await asyncio.sleep(0.01)
    assert recorder.seen == []


@pytest.mark.parametrize("status", REDIRECTS)
async def test_bk_login_redirect_is_not_signed_in_and_not_followed(
    aiohttp_server: ServerFactory, recorder: Recorder, status: int
) -> None:
    login = await aiohttp_server(redirector(recorder.url + "/login/", status))
    async with aiohttp.ClientSession(trust_env=False) as session:
        client = BkLogin(str(login.make_url("/login/accounts/is_login/")), session)
        assert await client.username("a-bk-token") is None
    assert recorder.seen == []
