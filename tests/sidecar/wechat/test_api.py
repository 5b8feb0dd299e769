"""The WeChat API client: request shapes, errcode mapping, timeouts, proxies, no leaked secrets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from common.config import Secret
from sidecar.app import default_http_session
from sidecar.config import SidecarConfig, WeChatConfig
from sidecar.errors import (
    CredentialRejected,
    InvalidCode,
    QuotaExhausted,
    Retryable,
    TokenInvalid,
    UserNotSubscribed,
    WeChatError,
    WeChatUnavailable,
)
from sidecar.metrics import SidecarMetrics
from sidecar.wechat.api import WeChatApi, mask_url
from tests.sidecar.fakewechat import MP_BASE, WECOM_BASE, FakeWeChat

CONFIG = WeChatConfig(mp_api=MP_BASE, wecom_api=WECOM_BASE, timeout_s=0.5)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
def wechat() -> Any:
    with aioresponses() as mocked:
        yield FakeWeChat(mocked)


async def test_stable_token_posts_json_with_force_refresh(session: aiohttp.ClientSession, wechat: FakeWeChat) -> None:
    api = WeChatApi(session, CONFIG, SidecarMetrics())
    fetched = await api.mp_stable_token("wxA", Secret("s3cret"), force_refresh=True)
    assert fetched.expires_in == 7200 and fetched.token.reveal().startswith("TOKEN-")
    (call,) = wechat.of("mp_stable_token")
    assert call.body == {"grant_type": "client_credential", "appid": "wxA", "secret": "s3cret", "force_refresh": True}


async def test_classic_token_uses_query(session: aiohttp.ClientSession, wechat: FakeWeChat) -> None:
    await WeChatApi(session, CONFIG, SidecarMetrics()).mp_token_classic("wxA", Secret("s3cret"))
    (call,) = wechat.of("mp_token")
    assert call.query == {"grant_type": "client_credential", "appid": "wxA", "secret": "s3cret"}


async def test_wecom_gettoken_uses_corpid_and_corpsecret(session: aiohttp.ClientSession, wechat: FakeWeChat) -> None:
    await WeChatApi(session, CONFIG, SidecarMetrics()).wecom_gettoken("ww1", Secret("cs"))
    assert wechat.of("wecom_gettoken")[0].query == {"corpid": "ww1", "corpsecret": "cs"}


async def test_template_send_carries_token_in_query_and_body_as_json(
    session: aiohttp.ClientSession, wechat: FakeWeChat
) -> None:
    wechat.valid_tokens.add("T")
    message = {"touser": "oA", "template_id": "t", "data": {"thing1": {"value": "磁盘告警"}}}
    answer = await WeChatApi(session, CONFIG, SidecarMetrics()).template_send("T", message)
    assert answer["errcode"] == 0 and "msgid" in answer
    (call,) = wechat.of("template_send")
    assert call.token == "T" and call.body == message


async def test_qrcode_create_asks_for_a_string_scene(session: aiohttp.ClientSession, wechat: FakeWeChat) -> None:
    wechat.valid_tokens.add("T")
    api = WeChatApi(session, CONFIG, SidecarMetrics())
    answer = await api.qrcode_create("T", scene_str="bind_x", expire_seconds=600)
    assert answer["ticket"] == "TICKET-bind_x"
    body = wechat.of("qrcode_create")[0].body
    scene = {"scene": {"scene_str": "bind_x"}}
    assert body == {"expire_seconds": 600, "action_name": "QR_STR_SCENE", "action_info": scene}


async def test_custom_send_and_wecom_calls_have_official_shapes(
    session: aiohttp.ClientSession, wechat: FakeWeChat
) -> None:
    wechat.valid_tokens.add("T")
    api = WeChatApi(session, CONFIG, SidecarMetrics())
    await api.custom_send("T", "oA", "hello")
    await api.wecom_message_send("T", {"touser": "u1|u2", "msgtype": "text", "agentid": 1, "text": {"content": "x"}})
    info = await api.wecom_getuserinfo("T", "CODE1")
    assert wechat.of("custom_send")[0].body == {"touser": "oA", "msgtype": "text", "text": {"content": "hello"}}
    assert wechat.of("wecom_message_send")[0].body["touser"] == "u1|u2"  # type: ignore[index]
    assert wechat.of("wecom_getuserinfo")[0].query == {"code": "CODE1", "access_token": "T"}
    assert info["userid"] == "zhangsan"


@pytest.mark.parametrize(
    ("errcode", "kind"),
    [
        (40001, TokenInvalid),
        (40014, TokenInvalid),
        (42001, TokenInvalid),
        (-1, Retryable),
        (45009, Retryable),
        (48006, QuotaExhausted),
        (43004, UserNotSubscribed),
        (40029, InvalidCode),
        (47001, WeChatError),
    ],
)
async def test_errcode_maps_to_error_class(
    session: aiohttp.ClientSession, wechat: FakeWeChat, errcode: int, kind: type[WeChatError]
) -> None:
    wechat.queue("template_send", {"errcode": errcode, "errmsg": "x"})
    with pytest.raises(kind) as caught:
        await WeChatApi(session, CONFIG, SidecarMetrics()).template_send("T", {})
    assert caught.value.errcode == errcode and caught.value.api == "template_send"


async def test_token_fetch_40001_means_wrong_secret_not_invalid_token(
    session: aiohttp.ClientSession, wechat: FakeWeChat
) -> None:
    wechat.queue("mp_stable_token", {"errcode": 40001, "errmsg": "invalid credential"})
    with pytest.raises(CredentialRejected):
        await WeChatApi(session, CONFIG, SidecarMetrics()).mp_stable_token("wxA", Secret("wrong"))


async def test_network_error_is_unavailable_and_never_shows_the_token(
    session: aiohttp.ClientSession, wechat: FakeWeChat
) -> None:
    wechat.queue("template_send", aiohttp.ClientConnectionError("refused http://x/?access_token=SECRET-TOKEN"))
    with pytest.raises(WeChatUnavailable) as caught:
        await WeChatApi(session, CONFIG, SidecarMetrics()).template_send("SECRET-TOKEN", {})
    assert "SECRET-TOKEN" not in str(caught.value)
    assert caught.value.errcode is None


async def test_timeout_is_unavailable(session: aiohttp.ClientSession, wechat: FakeWeChat) -> None:
    wechat.queue("template_send", TimeoutError())
    with pytest.raises(WeChatUnavailable, match=r"no answer within 0\.5 s"):
        await WeChatApi(session, CONFIG, SidecarMetrics()).template_send("T", {})


async def test_non_json_answer_is_unavailable(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mocked.post(f"{MP_BASE}/cgi-bin/message/custom/send?access_token=T", body=b"<html>busy</html>")
        with pytest.raises(WeChatUnavailable, match="not JSON"):
            await WeChatApi(session, CONFIG, SidecarMetrics()).custom_send("T", "o", "x")


async def test_http_5xx_is_unavailable(session: aiohttp.ClientSession) -> None:
    with aioresponses() as mocked:
        mocked.post(f"{MP_BASE}/cgi-bin/message/custom/send?access_token=T", status=502, body=b"bad gateway")
        with pytest.raises(WeChatUnavailable, match="HTTP 502"):
            await WeChatApi(session, CONFIG, SidecarMetrics()).custom_send("T", "o", "x")


async def test_call_without_answer_times_out_for_real() -> None:
    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/cgi-bin/message/custom/send", stall)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        config = WeChatConfig(mp_api=str(server.make_url("")).rstrip("/"), timeout_s=0.2)
        with pytest.raises(WeChatUnavailable, match="no answer"):
            await WeChatApi(session, config, SidecarMetrics()).custom_send("T", "o", "x")


def test_mask_url_hides_token_secret_and_code() -> None:
    url = "https://api/cgi-bin/token?appid=wx&secret=S1&access_token=T1&code=C1&corpsecret=S2"
    masked = mask_url(url)
    assert "S1" not in masked and "T1" not in masked and "C1" not in masked and "S2" not in masked
    assert "appid=wx" in masked


async def test_default_session_sends_through_http_proxy_from_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """trust_env=True: HTTP(S)_PROXY from the environment carries the WeChat calls."""
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"access_token": "via-proxy", "expires_in": 7200})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    async with TestServer(app) as server:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", str(server.make_url("")))
        config = SidecarConfig.__new__(SidecarConfig)
        object.__setattr__(config, "wechat", WeChatConfig(mp_api="http://api.weixin.example", timeout_s=2))
        session = default_http_session(config)
        try:
            fetched = await WeChatApi(session, config.wechat, SidecarMetrics()).mp_token_classic("wxA", Secret("s"))
        finally:
            await session.close()
    assert fetched.token.reveal() == "via-proxy"
    assert len(seen) == 1 and seen[0].startswith("http://api.weixin.example/cgi-bin/token")
