"""Who the browser user is: BlueKing's bk_token (against a fake login server) and a proxy header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from sidecar.binding import texts
from tests.sidecar.binding.conftest import Rig, RigFactory

CLASSIC = "/login/accounts/is_login/"
USER_MANAGE = "/login/api/v3/open/bk-tokens/verify/"


@dataclass
class FakeLogin:
    """BlueKing's login service: bk_token "tok-alice" is alice's, "tok-bob" is bob's."""

    users: dict[str, str] = field(default_factory=lambda: {"tok-alice": "alice", "tok-bob": "bob"})
    calls: list[str] = field(default_factory=list)
    fail_with: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(CLASSIC, self.classic)
        app.router.add_get(USER_MANAGE, self.user_manage)
        return app

    async def classic(self, request: web.Request) -> web.Response:
        self.calls.append(request.query.get("bk_token", ""))
        if self.fail_with:
            return web.Response(status=self.fail_with, text="oops")
        user = self.users.get(request.query.get("bk_token", ""))
        if user is None:
            return web.json_response({"result": False, "code": 1200, "message": "登录态已过期", "data": {}})
        return web.json_response({"result": True, "code": "00", "message": "用户验证成功", "data": {"username": user}})

    async def user_manage(self, request: web.Request) -> web.Response:
        self.calls.append(request.query.get("bk_token", ""))
        user = self.users.get(request.query.get("bk_token", ""))
        if user is None:
            return web.json_response({"error": {"code": "VALIDATION_ERROR", "message": "登录态已过期"}}, status=400)
        return web.json_response({"data": {"bk_username": user, "tenant_id": "system"}})


LoginRig = Callable[..., Awaitable[tuple[Rig, FakeLogin]]]


@pytest.fixture
async def bk_rig(make_rig: RigFactory, aiohttp_server: Any) -> LoginRig:
    async def build(path: str = CLASSIC, *, login: FakeLogin | None = None) -> tuple[Rig, FakeLogin]:
        fake = login or FakeLogin()
        server: TestServer = await aiohttp_server(fake.app())
        base = str(server.make_url("/")).rstrip("/")
        rig = await make_rig(binding=f'identity = "bk_login"\nbk_login_url = "{base}{path}"', passthrough=(base,))
        return rig, fake

    return build


def use_token(rig: Rig, token: str) -> None:
    rig.client.session.cookie_jar.update_cookies({"bk_token": token})


async def test_bk_login_valid_token_identifies_the_user(bk_rig: LoginRig) -> None:
    rig, fake = await bk_rig()
    use_token(rig, "tok-alice")
    await rig.store.bindings.bind("main", "alice", "oAlice", now=rig.clock())
    status, body = await rig.console("get_bind_status/")
    assert status == 200 and body == {"result": True}
    assert fake.calls == ["tok-alice"]


async def test_bk_login_user_manage_endpoint_variant_identifies_the_user(bk_rig: LoginRig) -> None:
    rig, _ = await bk_rig(USER_MANAGE)
    use_token(rig, "tok-bob")
    page = await rig.client.get("/bind/")
    assert page.status == 200 and ">bob<" in await page.text()


async def test_bk_login_user_manage_rejection_is_not_signed_in(bk_rig: LoginRig) -> None:
    rig, _ = await bk_rig(USER_MANAGE)
    use_token(rig, "tok-stale")
    status, body = await rig.console("get_bind_status/")
    assert status == 401 and body == {"result": False, "message": texts.NOT_SIGNED_IN}


async def test_bk_login_rejected_token_is_not_signed_in(bk_rig: LoginRig) -> None:
    rig, _ = await bk_rig()
    use_token(rig, "tok-forged")
    status, body = await rig.console("mp/get_qrcode/")
    assert status == 401 and body["message"] == texts.NOT_SIGNED_IN
    assert rig.wechat.count("qrcode_create") == 0


async def test_bk_login_without_cookie_does_not_ask_the_login_service(bk_rig: LoginRig) -> None:
    rig, fake = await bk_rig()
    status, _ = await rig.console("get_bind_status/")
    assert status == 401 and fake.calls == []


async def test_bk_login_answers_are_cached_briefly(bk_rig: LoginRig) -> None:
    rig, fake = await bk_rig()
    use_token(rig, "tok-alice")
    for _ in range(3):
        assert (await rig.console("get_bind_status/"))[0] == 200
    assert len(fake.calls) == 1
    rig.clock.now += 61
    await rig.console("get_bind_status/")
    assert len(fake.calls) == 2


async def test_bk_login_rejections_are_not_cached(bk_rig: LoginRig) -> None:
    rig, fake = await bk_rig()
    use_token(rig, "tok-later")
    await rig.console("get_bind_status/")
    fake.users["tok-later"] = "dave"  # the user signs in with that token now
    assert (await rig.console("get_bind_status/"))[0] == 200


async def test_bk_login_service_error_is_unavailable_not_signed_out(bk_rig: LoginRig) -> None:
    rig, _ = await bk_rig(login=FakeLogin(fail_with=502))
    use_token(rig, "tok-alice")
    status, body = await rig.console("get_bind_status/")
    assert status == 503 and body == {"result": False, "message": texts.LOGIN_UNAVAILABLE}


async def test_bk_login_service_unreachable_is_unavailable(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "bk_login"\nbk_login_url = "http://127.0.0.1:9/login/accounts/is_login/"')
    use_token(rig, "tok-alice")
    status, body = await rig.console("get_bind_status/")
    assert status == 503 and body["message"] == texts.LOGIN_UNAVAILABLE


async def test_bk_login_page_without_sign_in_links_to_blueking_login(bk_rig: LoginRig) -> None:
    rig, _ = await bk_rig()
    response = await rig.client.get("/bind/")
    page = await response.text()
    assert response.status == 401
    link = page.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    parts = urlsplit(link)
    assert parts.path == "/login/"
    assert parse_qs(parts.query)["c_url"] == ["http://paas.example.com/bind/"]


async def test_bk_login_mode_ignores_binding_link_cookies(bk_rig: LoginRig) -> None:
    rig, _ = await bk_rig()
    envelope = await rig.link("alice")
    assert envelope["result"] is False and "identity" in envelope["message"]


async def test_header_from_trusted_proxy_identifies_the_user(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["127.0.0.1/32"]')
    response = await rig.client.get("/console/user_center/weixin/get_bind_status/", headers={"X-Remote-User": "carol"})
    assert response.status == 200 and await response.json() == {"result": False}
    page = await rig.client.get("/bind/", headers={"X-Remote-User": "carol"})
    assert ">carol<" in await page.text()


async def test_header_from_untrusted_peer_is_ignored(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["10.0.0.0/8"]')
    response = await rig.client.get("/console/user_center/weixin/get_bind_status/", headers={"X-Remote-User": "carol"})
    assert response.status == 401
    assert await response.json() == {"result": False, "message": texts.NOT_SIGNED_IN}


async def test_header_missing_from_trusted_proxy_is_not_signed_in(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["127.0.0.1/32"]')
    status, _ = await rig.console("get_bind_status/")
    assert status == 401


async def test_header_with_malformed_username_is_not_signed_in(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["127.0.0.1/32"]')
    response = await rig.client.get(
        "/console/user_center/weixin/get_bind_status/", headers={"X-Remote-User": "a b<script>"}
    )
    assert response.status == 401


async def test_header_name_is_configurable(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\nuser_header = "X-Auth-User"\ntrusted_proxies = ["127.0.0.0/8"]')
    ok = await rig.client.get("/console/user_center/weixin/get_bind_status/", headers={"X-Auth-User": "carol"})
    other = await rig.client.get("/console/user_center/weixin/get_bind_status/", headers={"X-Remote-User": "carol"})
    assert ok.status == 200 and other.status == 401


async def test_header_mode_does_not_accept_link_cookies(make_rig: RigFactory) -> None:
    from sidecar.binding.cookies import COOKIE_NAME
    from sidecar.binding.keys import COOKIES

    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["10.0.0.0/8"]')
    rig.client.session.cookie_jar.update_cookies({COOKIE_NAME: rig.app[COOKIES].issue("alice", "main")})
    status, _ = await rig.console("get_bind_status/")
    assert status == 401
