"""WeCom binding end to end: login URL → (the user logs in at WeCom) → callback → bound."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sidecar.binding import texts
from tests.sidecar.binding.conftest import Rig, RigFactory

CALLBACK = "/console/user_center/weixin/qy/login_callback/"


@pytest.fixture
async def bob(rig: Rig) -> Rig:
    """Signed in as bob through a link for the WeCom account."""
    await rig.sign_in("bob", account="corp")
    return rig


async def login_state(rig: Rig) -> str:
    status, body = await rig.console("qy/get_login_url/")
    assert status == 200 and body["result"] is True, body
    return parse_qs(urlsplit(body["url"]).query)["state"][0]


async def callback(rig: Rig, **params: str) -> tuple[int, str]:
    response = await rig.client.get(CALLBACK, params=params)
    return response.status, await response.text()


async def test_login_url_is_qrconnect_by_default_with_corp_agent_state_and_redirect(bob: Rig) -> None:
    _, body = await bob.console("qy/get_login_url/")
    url = urlsplit(body["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://open.work.weixin.qq.com/wwopen/sso/qrConnect"
    assert query["appid"] == "ww1234567890"
    assert query["agentid"] == "1000002"
    assert query["redirect_uri"] == "http://paas.example.com/console/user_center/weixin/qy/login_callback/"
    assert len(query["state"]) == 32 and query["state"].isalnum()


async def test_login_url_wwlogin_style_when_configured(make_rig: RigFactory) -> None:
    rig = await make_rig(binding='wecom_login = "wwlogin"')
    await rig.sign_in("bob", account="corp")
    _, body = await rig.console("qy/get_login_url/")
    url = urlsplit(body["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://login.work.weixin.qq.com/wwlogin/sso/login"
    assert query["login_type"] == "CorpApp"
    assert query["appid"] == "ww1234567890" and query["agentid"] == "1000002"
    assert query["redirect_uri"].endswith("/console/user_center/weixin/qy/login_callback/")


async def test_login_url_states_differ_per_call(bob: Rig) -> None:
    assert await login_state(bob) != await login_state(bob)


async def test_callback_success_binds_userid_and_shows_closing_page(bob: Rig) -> None:
    state = await login_state(bob)
    status, page = await callback(bob, code="CODE-1", state=state)
    assert status == 200
    assert "绑定成功，3秒后将自动关闭页面" in page
    assert "window.close()" in page and "3000" in page
    binding = await bob.store.bindings.get("corp", "bob")
    assert binding is not None and binding.wx_id == "zhangsan"
    assert bob.wechat.of("wecom_getuserinfo")[-1].query["code"] == "CODE-1"
    assert (await bob.console("get_bind_status/"))[1]["result"] is True


@pytest.mark.parametrize("userid", ["@all", "carol|bob", "bob\x1b[2J"])
async def test_callback_with_userid_wecom_never_issues_binds_nothing(bob: Rig, userid: str) -> None:
    bob.wechat.queue("wecom_getuserinfo", {"errcode": 0, "errmsg": "ok", "userid": userid})
    state = await login_state(bob)
    status, page = await callback(bob, code="CODE-1", state=state)
    assert status == 200 and texts.WX_ID_INVALID in page
    assert await bob.store.bindings.get("corp", "bob") is None


async def test_callback_accepts_blueking_auth_code_parameter(bob: Rig) -> None:
    state = await login_state(bob)
    _, page = await callback(bob, auth_code="CODE-2", state=state)
    assert texts.BIND_OK_CLOSING in page


async def test_callback_english_page_when_asked(bob: Rig) -> None:
    state = await login_state(bob)
    _, page = await callback(bob, code="CODE-1", state=state, lang="en")
    assert "Bound. This page closes in 3 seconds." in page


async def test_callback_with_unknown_state_fails_without_calling_wecom(bob: Rig) -> None:
    await login_state(bob)
    status, page = await callback(bob, code="CODE-1", state="0" * 32)
    assert status == 200
    assert "绑定失败" in page and texts.STATE_INVALID in page
    assert bob.wechat.count("wecom_getuserinfo") == 0


async def test_callback_with_malformed_state_fails(bob: Rig) -> None:
    _, page = await callback(bob, code="CODE-1", state="<script>")
    assert texts.STATE_INVALID in page and "<script>" not in page


async def test_callback_reusing_a_state_fails(bob: Rig) -> None:
    state = await login_state(bob)
    await callback(bob, code="CODE-1", state=state)
    _, page = await callback(bob, code="CODE-3", state=state)
    assert texts.STATE_USED in page
    assert bob.wechat.count("wecom_getuserinfo") == 1


async def test_callback_with_invalid_code_fails_and_uses_the_state_up(bob: Rig) -> None:
    bob.wechat.queue("wecom_getuserinfo", {"errcode": 40029, "errmsg": "invalid code"})
    state = await login_state(bob)
    _, page = await callback(bob, code="BAD", state=state)
    assert texts.CODE_INVALID in page
    assert await bob.store.bindings.get("corp", "bob") is None
    _, again = await callback(bob, code="GOOD", state=state)
    assert texts.STATE_USED in again


async def test_callback_failure_reason_reaches_bind_status(bob: Rig) -> None:
    bob.wechat.queue("wecom_getuserinfo", {"errcode": 40029, "errmsg": "invalid code"})
    state = await login_state(bob)
    await callback(bob, code="BAD", state=state)
    _, body = await bob.console("get_bind_status/")
    assert body == {"result": False, "status": "failed", "message": texts.CODE_INVALID}


async def test_callback_with_expired_state_fails(bob: Rig) -> None:
    state = await login_state(bob)
    bob.clock.now += 601
    _, page = await callback(bob, code="CODE-1", state=state)
    assert texts.STATE_EXPIRED in page
    assert bob.wechat.count("wecom_getuserinfo") == 0


async def test_callback_without_code_fails(bob: Rig) -> None:
    state = await login_state(bob)
    _, page = await callback(bob, state=state)
    assert texts.CODE_MISSING in page


async def test_callback_for_non_member_fails(bob: Rig) -> None:
    bob.wechat.queue("wecom_getuserinfo", {"errcode": 0, "errmsg": "ok", "openid": "oExternal"})
    state = await login_state(bob)
    _, page = await callback(bob, code="CODE-1", state=state)
    assert texts.NOT_MEMBER in page


async def test_callback_when_wecom_is_down_fails_with_reason(bob: Rig) -> None:
    bob.wechat.queue("wecom_getuserinfo", {"errcode": -1, "errmsg": "system busy"})
    state = await login_state(bob)
    _, page = await callback(bob, code="CODE-1", state=state)
    assert texts.WECOM_FAILED in page
    assert bob.wechat.count("wecom_getuserinfo") == 1  # a login code is never spent twice


async def test_callback_with_userid_bound_to_another_user_fails(bob: Rig) -> None:
    await bob.store.bindings.bind("corp", "carol", "zhangsan", now=bob.clock())
    state = await login_state(bob)
    _, page = await callback(bob, code="CODE-1", state=state)
    assert texts.WX_ID_TAKEN in page


async def test_callback_in_another_users_browser_fails(bob: Rig) -> None:
    state = await login_state(bob)
    await bob.sign_in("mallory", account="corp")  # the browser now acts for someone else
    _, page = await callback(bob, code="CODE-1", state=state)
    assert texts.USER_MISMATCH in page
    assert await bob.store.bindings.get("corp", "mallory") is None


async def test_callback_without_identity_is_refused(rig: Rig) -> None:
    status, page = await callback(rig, code="CODE-1", state="a" * 32)
    assert status == 401 and texts.NOT_SIGNED_IN in page


async def test_get_login_url_when_already_bound_answers_no_need(bob: Rig) -> None:
    await bob.store.bindings.bind("corp", "bob", "bob-wecom", now=bob.clock())
    _, body = await bob.console("qy/get_login_url/")
    assert body == {"result": False, "message": texts.NO_NEED}


async def test_get_qrcode_for_a_wecom_account_is_refused(bob: Rig) -> None:
    _, body = await bob.console("mp/get_qrcode/")
    assert body == {"result": False, "message": texts.WRONG_KIND}


async def test_get_login_url_for_an_mp_link_is_refused(alice: Rig) -> None:
    _, body = await alice.console("qy/get_login_url/")
    assert body == {"result": False, "message": texts.WRONG_KIND}
