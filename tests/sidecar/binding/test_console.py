"""The console endpoints' edges: unbind and its CSRF guard, the feature switch, no identity."""

from __future__ import annotations

from sidecar.binding import texts
from tests.sidecar.binding.conftest import CONSOLE, Rig, RigFactory


async def test_unbind_removes_the_binding(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    status, body = await alice.unbind()
    assert status == 200 and body == {"result": True, "message": texts.UNBIND_OK}
    assert await alice.store.bindings.get("main", "alice") is None
    assert (await alice.console("get_bind_status/"))[1]["result"] is False


async def test_unbind_then_the_same_wechat_binds_again(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    await alice.unbind()
    scene = await alice.qrcode()
    assert await alice.scan(scene, openid="oAlice") == texts.BIND_OK


async def test_unbind_when_not_bound_answers_blueking_message(alice: Rig) -> None:
    status, body = await alice.unbind()
    assert status == 200 and body == {"result": False, "message": "账号未绑定过微信号，无法解绑"}


async def test_unbind_without_origin_or_referer_is_refused(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    status, body = await alice.unbind(origin=None)
    assert status == 403 and body == {"result": False, "message": texts.ORIGIN_REJECTED}
    assert await alice.store.bindings.get("main", "alice") is not None


async def test_unbind_from_another_site_is_refused(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    status, _ = await alice.unbind(origin="http://evil.example.net")
    assert status == 403
    assert await alice.store.bindings.get("main", "alice") is not None


async def test_unbind_with_null_origin_is_refused(alice: Rig) -> None:
    status, _ = await alice.unbind(origin="null")
    assert status == 403


async def test_unbind_with_null_origin_and_same_site_referer_is_refused(alice: Rig) -> None:
    """What a cross-origin 307 to the unbind URL produces: the Referer cannot vouch for it."""
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    headers = {"Origin": "null", "Referer": alice.origin + "/bind/"}
    response = await alice.client.post(CONSOLE + "unbind_wx_user_info/", headers=headers)
    assert response.status == 403
    assert await response.json() == {"result": False, "message": texts.ORIGIN_REJECTED}
    assert await alice.store.bindings.get("main", "alice") is not None


async def test_unbind_from_public_url_origin_is_accepted(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    status, body = await alice.unbind(origin="http://paas.example.com")
    assert status == 200 and body["result"] is True


async def test_unbind_with_same_site_referer_and_no_origin_is_accepted(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    response = await alice.client.post(CONSOLE + "unbind_wx_user_info/", headers={"Referer": alice.origin + "/bind/"})
    assert response.status == 200 and (await response.json())["result"] is True


async def test_unbind_by_get_is_not_allowed(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice", now=alice.clock())
    response = await alice.client.get(CONSOLE + "unbind_wx_user_info/")
    assert response.status == 405
    assert await alice.store.bindings.get("main", "alice") is not None


async def test_unbind_without_identity_is_refused(rig: Rig) -> None:
    status, body = await rig.unbind()
    assert status == 401 and body["message"] == texts.NOT_SIGNED_IN


async def test_console_without_identity_answers_401_with_message(rig: Rig) -> None:
    for endpoint in ("mp/get_qrcode/", "qy/get_login_url/", "get_bind_status/"):
        status, body = await rig.console(endpoint)
        assert status == 401 and body == {"result": False, "message": texts.NOT_SIGNED_IN}


async def test_console_with_forged_session_cookie_is_refused(rig: Rig) -> None:
    from sidecar.binding.cookies import COOKIE_NAME

    forged = "eyJ1IjoiYWxpY2UiLCJhIjoibWFpbiIsImUiOjk5OTk5OTk5OTl9.AAAA"  # alice on main, far future, no MAC
    rig.client.session.cookie_jar.update_cookies({COOKIE_NAME: forged})
    status, _ = await rig.console("get_bind_status/")
    assert status == 401


async def test_console_session_expires(alice: Rig) -> None:
    alice.clock.now += 3601
    status, _ = await alice.console("get_bind_status/")
    assert status == 401


async def test_console_when_disabled_answers_not_enabled_everywhere(make_rig: RigFactory) -> None:
    rig = await make_rig(binding="enabled = false")
    for endpoint in ("mp/get_qrcode/", "qy/get_login_url/", "get_bind_status/"):
        status, body = await rig.console(endpoint)
        assert status == 200 and body == {"result": False, "message": "系统管理员未启用微信通知组件"}
    assert (await rig.unbind())[1]["message"] == texts.NOT_ENABLED


async def test_scan_when_disabled_gets_no_binding_reply(make_rig: RigFactory) -> None:
    rig = await make_rig(binding="enabled = false")
    assert await rig.scan("bind_" + "0" * 32, openid="oX", follower=True) is None


async def test_console_with_unknown_account_parameter(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["127.0.0.1/32"]')
    response = await rig.client.get(
        CONSOLE + "get_bind_status/", params={"account": "nope"}, headers={"X-Remote-User": "carol"}
    )
    assert await response.json() == {"result": False, "message": texts.ACCOUNT_UNKNOWN}


async def test_console_account_parameter_picks_the_account(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["127.0.0.1/32"]')
    await rig.store.bindings.bind("corp", "carol", "carol-wecom", now=rig.clock())
    headers = {"X-Remote-User": "carol"}
    main = await rig.client.get(CONSOLE + "get_bind_status/", headers=headers)
    corp = await rig.client.get(CONSOLE + "get_bind_status/", params={"account": "corp"}, headers=headers)
    assert (await main.json())["result"] is False and (await corp.json())["result"] is True


async def test_console_qy_login_url_uses_the_wecom_account_by_default(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='identity = "header"\ntrusted_proxies = ["127.0.0.1/32"]')
    response = await rig.client.get(CONSOLE + "qy/get_login_url/", headers={"X-Remote-User": "carol"})
    body = await response.json()
    assert body["result"] is True and "appid=ww1234567890" in body["url"]


async def test_link_account_wins_over_account_parameter(alice: Rig) -> None:
    await alice.store.bindings.bind("corp", "alice", "alice-wecom", now=alice.clock())
    _, body = await alice.console("get_bind_status/", account="corp")
    assert body["result"] is False  # the link was for "main"
