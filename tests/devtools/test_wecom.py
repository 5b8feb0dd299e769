"""WeCom: gettoken, message/send (partial failures, limits, duplicates), getuserinfo and login pages."""

from urllib.parse import parse_qs, urlsplit

import pytest

from devtools.emulator import create_app
from tests.devtools.conftest import AGENTID, CORP_SECRET, CORPID, make_config, mp_token, wecom_token


async def send(emu, body, token=None):
    token = token or await wecom_token(emu)
    payload = {"agentid": AGENTID, "msgtype": "text", "text": {"content": "disk full"}, **body}
    resp = await emu.post("/cgi-bin/message/send", params={"access_token": token}, json=payload)
    return await resp.json()


async def statuses(emu, person):
    resp = await emu.get("/_emu/deliveries", params={"person": person, "channel": "wecom.message"})
    return [d["status"] for d in (await resp.json())["deliveries"]]


async def test_gettoken_returns_the_same_token_while_valid(emu):
    assert await wecom_token(emu) == await wecom_token(emu)


async def test_gettoken_issues_a_new_token_after_expiry(emu, clock):
    first = await wecom_token(emu)
    clock.advance(7200)
    assert await wecom_token(emu) != first


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"corpid": CORPID, "corpsecret": "wrong"}, 40001),
        ({"corpid": "ww-unknown", "corpsecret": CORP_SECRET}, 40013),
        ({"corpsecret": CORP_SECRET}, 41002),
        ({"corpid": CORPID}, 41004),
    ],
)
async def test_gettoken_bad_credentials_answer_errcodes(emu, params, errcode):
    assert (await (await emu.get("/cgi-bin/gettoken", params=params)).json())["errcode"] == errcode


async def test_send_to_member_is_delivered(emu):
    body = await send(emu, {"touser": "bob"})
    assert body["errcode"] == 0 and body["msgid"]
    assert "invaliduser" not in body
    assert await statuses(emu, "bob") == ["delivered"]


async def test_send_reports_unknown_members_in_invaliduser(emu):
    body = await send(emu, {"touser": "bob|mallory|eve"})
    assert body["errcode"] == 0
    assert body["invaliduser"] == "mallory|eve"


async def test_send_userids_are_case_insensitive(emu):
    assert "invaliduser" not in await send(emu, {"touser": "BOB"})
    assert await statuses(emu, "bob") == ["delivered"]


async def test_send_to_only_unknown_members_answers_81013(emu):
    body = await send(emu, {"touser": "mallory|eve"})
    assert body["errcode"] == 81013
    assert body["invaliduser"] == "mallory|eve"


async def test_send_to_all_reaches_every_member(emu):
    await send(emu, {"touser": "@all"})
    assert await statuses(emu, "bob") == await statuses(emu, "carol") == ["delivered"]


async def test_send_more_than_1000_users_is_refused(emu):
    body = await send(emu, {"touser": "|".join(f"u{i}" for i in range(1001))})
    assert body["errcode"] == 40058


async def test_send_with_another_agentid_answers_40056(emu):
    assert (await send(emu, {"touser": "bob", "agentid": 1}))["errcode"] == 40056


async def test_send_unknown_msgtype_answers_40008(emu):
    assert (await send(emu, {"touser": "bob", "msgtype": "voice"}))["errcode"] == 40008


async def test_send_truncates_text_to_2048_bytes(emu):
    await send(emu, {"touser": "bob", "text": {"content": "告" * 1000}})
    [delivery] = (await (await emu.get("/_emu/deliveries", params={"person": "bob"})).json())["deliveries"]
    assert len(delivery["text"].encode()) <= 2048 and delivery["text"] == "告" * 682


async def test_send_markdown_over_2048_bytes_answers_45002(emu):
    body = await send(emu, {"touser": "bob", "msgtype": "markdown", "markdown": {"content": "x" * 2049}})
    assert body["errcode"] == 45002


async def test_send_textcard_truncates_title_and_description(emu):
    card = {"title": "t" * 200, "description": "d" * 600, "url": "http://paas.example.com/a", "btntxt": "查看详情按钮"}
    await send(emu, {"touser": "bob", "msgtype": "textcard", "textcard": card})
    [delivery] = (await (await emu.get("/_emu/deliveries", params={"person": "bob"})).json())["deliveries"]
    assert len(delivery["detail"]["title"]) == 128 and len(delivery["detail"]["description"]) == 512
    assert delivery["detail"]["btntxt"] == "查看详情"


async def test_send_beyond_30_per_minute_is_accepted_but_dropped(emu, clock):
    token = await wecom_token(emu)
    for _ in range(31):
        assert (await send(emu, {"touser": "bob"}, token))["errcode"] == 0
    assert (await statuses(emu, "bob")).count("dropped") == 1
    clock.advance(60)
    await send(emu, {"touser": "bob"}, token)
    assert (await statuses(emu, "bob"))[-1] == "delivered"


async def test_send_beyond_hourly_limit_is_dropped(aiohttp_client, clock):
    emu = await aiohttp_client(create_app(make_config(wecom_per_hour=3), clock=clock))
    token = await wecom_token(emu)
    for _ in range(4):
        await send(emu, {"touser": "bob"}, token)
        clock.advance(61)
    assert await statuses(emu, "bob") == ["delivered"] * 3 + ["dropped"]


async def test_send_rate_limit_is_per_member(emu):
    token = await wecom_token(emu)
    for _ in range(31):
        await send(emu, {"touser": "bob"}, token)
    await send(emu, {"touser": "carol"}, token)
    assert await statuses(emu, "carol") == ["delivered"]


async def test_send_duplicate_check_suppresses_repeat_within_interval(emu, clock):
    body = {"touser": "bob", "enable_duplicate_check": 1, "duplicate_check_interval": 600}
    token = await wecom_token(emu)
    await send(emu, body, token)
    clock.advance(599)
    await send(emu, body, token)
    clock.advance(1)
    await send(emu, body, token)
    assert await statuses(emu, "bob") == ["delivered", "duplicate", "delivered"]


async def test_send_without_duplicate_check_delivers_repeats(emu):
    token = await wecom_token(emu)
    await send(emu, {"touser": "bob"}, token)
    await send(emu, {"touser": "bob"}, token)
    assert await statuses(emu, "bob") == ["delivered", "delivered"]


async def test_send_with_mp_token_answers_40014(emu):
    assert (await send(emu, {"touser": "bob"}, await mp_token(emu)))["errcode"] == 40014


async def login_code(emu, person="bob"):
    resp = await emu.post(
        f"/_emu/users/{person}/wecom-login", json={"redirect_uri": "http://paas.example.com/cb", "state": "s1"}
    )
    return (await resp.json())["code"]


async def userinfo(emu, code, token=None):
    params = {"access_token": token or await wecom_token(emu), "code": code}
    return await (await emu.get("/cgi-bin/auth/getuserinfo", params=params)).json()


async def test_getuserinfo_answers_the_member_for_a_fresh_code(emu):
    body = await userinfo(emu, await login_code(emu))
    assert body == {"errcode": 0, "errmsg": "ok", "userid": "bob"}


async def test_getuserinfo_code_is_single_use(emu):
    code = await login_code(emu)
    await userinfo(emu, code)
    assert (await userinfo(emu, code))["errcode"] == 40029


async def test_getuserinfo_code_expires_after_five_minutes(emu, clock):
    code = await login_code(emu)
    clock.advance(300)
    assert (await userinfo(emu, code))["errcode"] == 40029


async def test_getuserinfo_unknown_code_answers_40029_and_missing_41008(emu):
    assert (await userinfo(emu, "bogus"))["errcode"] == 40029
    resp = await emu.get("/cgi-bin/auth/getuserinfo", params={"access_token": await wecom_token(emu)})
    assert (await resp.json())["errcode"] == 41008


LOGIN = {
    "appid": CORPID,
    "agentid": str(AGENTID),
    "redirect_uri": "http://paas.example.com/bind/wecom?x=1",
    "state": "st",
}


async def test_login_page_offers_a_button_per_member(emu):
    resp = await emu.get("/wwopen/sso/qrConnect", params=LOGIN)
    page = await resp.text()
    assert resp.status == 200
    assert "log in as bob" in page and "log in as carol" in page


async def test_login_confirm_redirects_with_code_and_state(emu):
    resp = await emu.post("/wwlogin/sso/confirm", data={**LOGIN, "userid": "carol"}, allow_redirects=False)
    assert resp.status == 302
    location = urlsplit(resp.headers["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "paas.example.com" and location.path == "/bind/wecom"
    assert query["x"] == ["1"] and query["state"] == ["st"]
    assert (await userinfo(emu, query["code"][0]))["userid"] == "carol"


async def test_new_login_page_requires_login_type_corpapp(emu):
    assert (await emu.get("/wwlogin/sso/login", params=LOGIN)).status == 400
    assert (await emu.get("/wwlogin/sso/login", params={**LOGIN, "login_type": "CorpApp"})).status == 200


@pytest.mark.parametrize(
    ("override", "status"),
    [({"redirect_uri": "/relative"}, 400), ({"appid": "ww-nope"}, 404), ({"agentid": "7"}, 404)],
)
async def test_login_page_refuses_bad_parameters(emu, override, status):
    assert (await emu.get("/wwopen/sso/qrConnect", params={**LOGIN, **override})).status == status


async def test_admin_login_accepts_the_login_url_an_app_built(emu):
    url = (
        f"https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp&appid={CORPID}&agentid={AGENTID}"
        "&state=st&redirect_uri=http%3A%2F%2Fh%2Fcb"
    )
    resp = await emu.post("/_emu/users/bob/wecom-login", json={"login_url": url})
    body = await resp.json()
    assert body["userid"] == "bob"
    assert body["redirect_url"] == f"http://h/cb?code={body['code']}&state=st"


async def test_admin_login_for_non_member_is_refused(emu):
    resp = await emu.post("/_emu/users/alice/wecom-login", json={"redirect_uri": "http://h/cb"})
    assert resp.status == 400
    assert "not a member" in (await resp.json())["error"]
