"""MP access tokens: classic (each fetch supersedes the last after an overlap) and stable."""

import pytest

from tests.devtools.conftest import APPID, SECRET, mp_token, wecom_token

QR = {"action_name": "QR_SCENE", "expire_seconds": 60, "action_info": {"scene": {"scene_id": 7}}}


async def errcode_with(emu, token):
    """The errcode an MP API call answers with this token (0 when it is served)."""
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": token}, json=QR)
    return (await resp.json()).get("errcode", 0)


async def stable(emu, force=None, secret=SECRET):
    body = {"grant_type": "client_credential", "appid": APPID, "secret": secret}
    if force is not None:
        body["force_refresh"] = force
    return await (await emu.post("/cgi-bin/stable_token", json=body)).json()


async def test_token_fetch_answers_token_and_7200_seconds(emu):
    resp = await emu.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET})
    body = await resp.json()
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/json; encoding=utf-8"
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200
    assert len(body["access_token"]) >= 100


async def test_token_previous_one_still_works_within_overlap(emu, clock):
    old = await mp_token(emu)
    await mp_token(emu)
    clock.advance(299)
    assert await errcode_with(emu, old) == 0


async def test_token_previous_one_is_invalid_after_overlap(emu, clock):
    old = await mp_token(emu)
    new = await mp_token(emu)
    clock.advance(300)
    assert await errcode_with(emu, old) == 40001
    assert await errcode_with(emu, new) == 0


async def test_token_expires_after_ttl_with_42001(emu, clock):
    token = await mp_token(emu)
    clock.advance(7200)
    assert await errcode_with(emu, token) == 42001


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": APPID, "secret": "wrong"}, 40125),
        ({"grant_type": "client_credential", "secret": SECRET}, 41002),
        ({"grant_type": "client_credential", "appid": APPID}, 41004),
        ({"grant_type": "authorization_code", "appid": APPID, "secret": SECRET}, 40002),
    ],
)
async def test_token_bad_credentials_answer_wechat_errcodes(emu, params, errcode):
    body = await (await emu.get("/cgi-bin/token", params=params)).json()
    assert body["errcode"] == errcode
    assert "rid: " in body["errmsg"]


async def test_api_without_token_answers_41001(emu):
    body = await (await emu.post("/cgi-bin/qrcode/create", json=QR)).json()
    assert body["errcode"] == 41001


async def test_api_with_malformed_token_answers_40014(emu):
    assert await errcode_with(emu, "not a token!") == 40014


async def test_api_with_unknown_wellformed_token_answers_40001(emu):
    assert await errcode_with(emu, "A" * 120) == 40001


async def test_api_with_wecom_token_answers_40001(emu):
    assert await errcode_with(emu, await wecom_token(emu)) == 40001


async def test_stable_token_normal_fetch_returns_same_token_with_remaining_time(emu, clock):
    first = await stable(emu)
    clock.advance(100)
    second = await stable(emu)
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] == 7100


async def test_stable_token_is_renewed_in_its_last_five_minutes_and_old_stays_valid(emu, clock):
    first = await stable(emu)
    clock.advance(7200 - 299)
    second = await stable(emu)
    assert second["access_token"] != first["access_token"]
    assert await errcode_with(emu, first["access_token"]) == 0


async def test_stable_token_does_not_invalidate_classic_tokens(emu, clock):
    classic = await mp_token(emu)
    await stable(emu, force=True)
    clock.advance(1000)
    assert await errcode_with(emu, classic) == 0


async def test_classic_fetch_does_not_invalidate_stable_token(emu, clock):
    token = (await stable(emu))["access_token"]
    await mp_token(emu)
    clock.advance(1000)
    assert await errcode_with(emu, token) == 0


async def test_stable_token_force_refresh_replaces_the_current_one(emu):
    first = await stable(emu)
    forced = await stable(emu, force=True)
    assert forced["access_token"] != first["access_token"]
    assert await errcode_with(emu, first["access_token"]) == 40001
    assert await errcode_with(emu, forced["access_token"]) == 0


async def test_stable_token_force_refresh_within_30_seconds_is_refused(emu, clock):
    await stable(emu, force=True)
    clock.advance(29)
    assert (await stable(emu, force=True))["errcode"] == 45011
    clock.advance(1)
    assert "access_token" in await stable(emu, force=True)


async def test_stable_token_force_refresh_limited_to_20_per_day(emu, clock):
    clock.now = 1_800_000_000 - (1_800_000_000 + 8 * 3600) % 86400  # midnight in Beijing
    for _ in range(20):
        assert "access_token" in await stable(emu, force=True)
        clock.advance(31)
    assert (await stable(emu, force=True))["errcode"] == 45009
    clock.advance(86400)
    assert "access_token" in await stable(emu, force=True)


async def test_stable_token_requires_post(emu):
    body = await (await emu.get("/cgi-bin/stable_token")).json()
    assert body["errcode"] == 43002


async def test_stable_token_bad_secret_answers_40125(emu):
    assert (await stable(emu, secret="nope"))["errcode"] == 40125


async def test_stable_token_non_json_body_answers_47001(emu):
    body = await (await emu.post("/cgi-bin/stable_token", data=b"appid=x")).json()
    assert body["errcode"] == 47001


async def test_token_counts_are_reported_per_app_and_kind(emu):
    await mp_token(emu)
    await mp_token(emu)
    await stable(emu)
    await stable(emu)
    counts = (await (await emu.get("/_emu/tokens")).json())["counts"]
    assert counts[APPID] == {"token": 2, "stable_token": 2}
