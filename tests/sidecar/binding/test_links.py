"""``POST /api/v1/binding-links`` and opening the one-time URL it returns."""

from __future__ import annotations

import hashlib

import pytest
from yarl import URL

from sidecar.binding import texts
from sidecar.binding.cookies import COOKIE_NAME
from tests.sidecar.binding.conftest import AUTH, Rig, RigFactory


async def test_link_answers_blueking_envelope_with_public_url_and_lifetime(rig: Rig) -> None:
    envelope = await rig.link("alice")
    assert envelope["result"] is True and envelope["code"] == 0
    url = URL(envelope["data"]["url"])
    assert str(url.origin()) == "http://paas.example.com"
    assert url.path.startswith("/bind/") and len(url.path) > 40
    assert envelope["data"]["expires_in"] == 600


async def test_link_store_keeps_only_the_token_hash(rig: Rig) -> None:
    envelope = await rig.link("alice")
    token = URL(envelope["data"]["url"]).name
    link = await rig.store.binding_links.consume(hashlib.sha256(token.encode()).hexdigest(), now=rig.clock())
    assert link is not None and link.username == "alice" and link.account == "main"
    assert token not in link.token_hash


async def test_link_opens_once_sets_session_cookie_and_redirects_to_page(rig: Rig) -> None:
    envelope = await rig.link("alice")
    response = await rig.open(envelope["data"]["url"])
    assert response.status == 303
    assert response.headers["Location"] == "/bind/"
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # public_url is http:// in the test config
    page = await rig.client.get("/bind/")
    assert page.status == 200 and ">alice<" in await page.text()


async def test_link_second_opening_is_refused(rig: Rig) -> None:
    envelope = await rig.link("alice")
    await rig.open(envelope["data"]["url"])
    again = await rig.open(envelope["data"]["url"])
    assert again.status == 404
    assert texts.LINK_INVALID in await again.text()
    assert COOKIE_NAME not in again.cookies


async def test_link_head_request_like_a_link_scanners_does_not_consume_it(rig: Rig) -> None:
    url = (await rig.link("alice"))["data"]["url"]
    head = await rig.client.head(URL(url).path, allow_redirects=False)
    assert head.status == 200 and "Set-Cookie" not in head.headers
    assert head.headers["Cache-Control"] == "no-store"
    response = await rig.open(url)
    assert response.status == 303 and response.headers["Location"] == "/bind/"


async def test_link_after_expiry_is_refused(rig: Rig) -> None:
    envelope = await rig.link("alice")
    rig.clock.now += 601
    response = await rig.open(envelope["data"]["url"])
    assert response.status == 404


async def test_link_unknown_or_malformed_token_is_refused(rig: Rig) -> None:
    assert (await rig.client.get("/bind/" + "A" * 43, allow_redirects=False)).status == 404
    assert (await rig.client.get("/bind/short", allow_redirects=False)).status == 404


async def test_link_lang_survives_the_redirect(rig: Rig) -> None:
    envelope = await rig.link("alice")
    response = await rig.open(envelope["data"]["url"] + "?lang=en")
    assert response.headers["Location"] == "/bind/?lang=en"


async def test_link_for_named_account(rig: Rig) -> None:
    await rig.sign_in("bob", account="corp")
    _, body = await rig.console("qy/get_login_url/")
    assert body["result"] is True


async def test_link_session_secure_cookie_under_https_public_url(make_rig: RigFactory) -> None:
    server = '[server]\nlisten = "127.0.0.1:8081"\npublic_url = "https://paas.example.com"\n'
    rig = await make_rig(replace={"server": server})
    envelope = await rig.link("alice")
    assert envelope["data"]["url"].startswith("https://paas.example.com/bind/")
    response = await rig.open(envelope["data"]["url"])
    assert response.cookies[COOKIE_NAME]["secure"] is True


async def test_link_requires_app_credentials(rig: Rig) -> None:
    response = await rig.client.post("/api/v1/binding-links", json={"bk_app_code": "bk_paas", "username": "alice"})
    envelope = await response.json()
    assert envelope["result"] is False and envelope["code"] == 1306401


async def test_link_wrong_app_secret_is_refused(rig: Rig) -> None:
    body = {"bk_app_code": "bk_paas", "bk_app_secret": "wrong", "username": "alice"}
    envelope = await (await rig.client.post("/api/v1/binding-links", json=body)).json()
    assert envelope["result"] is False and envelope["code"] == 1306403


async def test_link_form_body_works_like_json(rig: Rig) -> None:
    response = await rig.client.post("/api/v1/binding-links", data={**AUTH, "username": "alice"})
    assert (await response.json())["result"] is True


async def test_link_without_username_is_refused(rig: Rig) -> None:
    envelope = await (await rig.client.post("/api/v1/binding-links", json=AUTH)).json()
    assert envelope["result"] is False and envelope["code"] == 1306000
    assert "[username]" in envelope["message"]


async def test_link_for_unknown_account_is_refused(rig: Rig) -> None:
    envelope = await rig.link("alice", account="nope")
    assert envelope["result"] is False and "[account]" in envelope["message"]


async def test_link_bad_json_is_refused_with_blueking_message(rig: Rig) -> None:
    response = await rig.client.post("/api/v1/binding-links", data=b"{nope")
    envelope = await response.json()
    assert response.status == 200
    assert envelope["message"] == "Request JSON string is wrong in format, which cannot be analyzed."


async def test_link_when_binding_disabled_is_refused(make_rig: RigFactory) -> None:
    rig = await make_rig(binding="enabled = false")
    envelope = await rig.link("alice")
    assert envelope["result"] is False and envelope["message"] == texts.NOT_ENABLED


async def test_link_opened_after_binding_disabled_is_refused(make_rig: RigFactory) -> None:
    rig = await make_rig(binding="enabled = false")
    response = await rig.client.get("/bind/" + "A" * 43, allow_redirects=False)
    assert texts.NOT_ENABLED in await response.text()


@pytest.mark.parametrize("username", ["alice\n", "alice\x1b[2J", "alice\tbob"])
async def test_link_for_username_with_final_newline_or_control_character_is_refused(rig: Rig, username: str) -> None:
    envelope = await rig.link(username)
    assert envelope["result"] is False and envelope["message"].startswith("username [username] is required")
