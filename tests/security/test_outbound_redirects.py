"""No outbound request of either tier follows a redirect: an upstream cannot steer where we connect.

A followed redirect turns whoever answers into a router. The WeChat client would re-send a
``stable_token`` body, AppSecret included, to wherever a 307/308 points; the pull client would let
a compromised DMZ gateway send the sidecar to any intranet address (a 303 becomes a GET there).
So every outbound session refuses redirects, and a 3xx is one more unexpected answer.
(The gateway's push relay: tests/gateway/test_relay_push.py::test_push_does_not_follow_redirects.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from common.config import Secret
from sidecar.app import default_http_session
from sidecar.binding.identity import BkLogin
from sidecar.config import load_config
from sidecar.errors import WeChatUnavailable
from sidecar.wxapi import WeChatApi
from tests.security.servers import REDIRECTS, Recorder, ServerFactory, redirector
from tests.sidecar.helpers import write_config

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
        api = WeChatApi(session, config.wechat)
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
async def test_bk_login_redirect_is_not_signed_in_and_not_followed(
    aiohttp_server: ServerFactory, recorder: Recorder, status: int
) -> None:
    login = await aiohttp_server(redirector(recorder.url + "/login/", status))
    async with aiohttp.ClientSession(trust_env=False) as session:
        client = BkLogin(str(login.make_url("/login/accounts/is_login/")), session)
        assert await client.username("a-bk-token") is None
    assert recorder.seen == []
