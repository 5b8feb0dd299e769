"""The standalone binding page over HTTP: its states, languages and self-containment."""

from __future__ import annotations

import json
import re

from sidecar.binding import texts
from tests.sidecar.binding.conftest import Rig, RigFactory


async def page(rig: Rig, **params: str) -> tuple[int, str, dict[str, str]]:
    response = await rig.client.get("/bind/", params=params)
    return response.status, await response.text(), dict(response.headers)


def config_of(html: str) -> dict[str, object]:
    raw = html.split('<script type="application/json" id="cfg"', 1)[1].split(">", 1)[1].split("</script>", 1)[0]
    value: dict[str, object] = json.loads(raw)
    return value


def shown_states(html: str) -> set[str]:
    """The data-state sections not hidden when the page loads."""
    return {m.group(1) for m in re.finditer(r'<section data-state="(\w+)"\s*>', html)}


async def test_page_mp_shows_inline_svg_qr_code_and_polls(alice: Rig) -> None:
    status, html, _ = await page(alice)
    assert status == 200
    assert shown_states(html) == {"mp"}
    assert re.search(r'<div id="qrcode"><svg [^>]*class="qr"', html)
    cfg = config_of(html)
    assert cfg["polling"] is True and cfg["pollMs"] == 1500
    assert str(cfg["statusUrl"]).startswith("/console/user_center/weixin/get_bind_status/?")
    assert cfg["expiresAt"] == int((alice.clock() + 600) * 1000)


async def test_page_status_url_names_the_attempt_it_shows(alice: Rig) -> None:
    _, html, _ = await page(alice)
    session = await alice.store.binding_attempts.by_scene("main", alice.last_scene())
    assert session is not None
    assert f"session={session.id}" in str(config_of(html)["statusUrl"])


async def test_page_offers_wechats_own_image_as_a_link_only(alice: Rig) -> None:
    _, html, _ = await page(alice)
    assert 'href="https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=TICKET-' in html
    assert "<img" not in html


async def test_page_loads_nothing_from_other_origins(alice: Rig) -> None:
    _, html, headers = await page(alice)
    for attribute in re.findall(r'\bsrc="([^"]*)"', html):
        assert not attribute.startswith(("http:", "https:", "//")), attribute
    assert "<link" not in html
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


async def test_page_scripts_and_styles_carry_the_csp_nonce(alice: Rig) -> None:
    _, html, headers = await page(alice)
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"])
    assert nonce is not None
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        assert f'nonce="{nonce.group(1)}"' in tag, tag


async def test_page_is_not_cached_and_sends_no_referer(alice: Rig) -> None:
    _, _, headers = await page(alice)
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_page_bound_user_sees_bound_state_with_unbind(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice0001", now=alice.clock())
    _, html, _ = await page(alice)
    assert shown_states(html) == {"bound"}
    assert 'id="unbind"' in html and "oAli…0001" in html
    assert config_of(html)["polling"] is False
    assert alice.wechat.count("qrcode_create") == 0


async def test_page_inactive_binding_shows_qr_to_refollow_and_unbind(alice: Rig) -> None:
    await alice.store.bindings.bind("main", "alice", "oAlice0001", now=alice.clock())
    await alice.store.bindings.set_active_by_wx_id("main", "oAlice0001", False, now=alice.clock())
    _, html, _ = await page(alice)
    assert shown_states(html) == {"mp"}
    assert 'id="inactive"' in html and html.count('id="unbind"') == 1
    assert config_of(html)["polling"] is True


async def test_page_unbound_user_gets_no_unbind_button(alice: Rig) -> None:
    _, html, _ = await page(alice)
    assert 'id="unbind"' not in html and 'id="inactive"' not in html


async def test_page_wecom_shows_login_button(rig: Rig) -> None:
    await rig.sign_in("bob", account="corp")
    _, html, _ = await page(rig)
    assert shown_states(html) == {"wecom"}
    button = re.search(r'id="wecom-login" href="([^"]+)"', html)
    assert button is not None
    assert button.group(1).startswith("https://open.work.weixin.qq.com/wwopen/sso/qrConnect?appid=ww1234567890")


async def test_page_qr_failure_shows_the_reason(alice: Rig) -> None:
    alice.wechat.queue("qrcode_create", {"errcode": 40013, "errmsg": "invalid appid"})
    status, html, _ = await page(alice)
    assert status == 200
    assert shown_states(html) == {"failed"}
    assert texts.QRCODE_FAILED in html


async def test_page_chinese_by_default(alice: Rig) -> None:
    _, html, _ = await page(alice)
    assert '<html lang="zh-CN">' in html and "请使用微信扫描二维码" in html


async def test_page_english_from_accept_language(alice: Rig) -> None:
    response = await alice.client.get("/bind/", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
    html = await response.text()
    assert '<html lang="en">' in html and "Scan the QR code with WeChat" in html
    assert config_of(html)["reasons"] == texts.EN_REASONS


async def test_page_lang_parameter_beats_accept_language(alice: Rig) -> None:
    response = await alice.client.get("/bind/?lang=zh", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in await response.text()


async def test_page_offers_the_other_language(alice: Rig) -> None:
    _, html, _ = await page(alice, lang="en")
    assert 'href="/bind/?lang=zh">中文</a>' in html


async def test_page_without_identity_explains_in_a_page(rig: Rig) -> None:
    status, html, _ = await page(rig)
    assert status == 401 and texts.NOT_SIGNED_IN in html


async def test_page_when_disabled_says_so(make_rig: RigFactory) -> None:
    rig = await make_rig(binding="enabled = false")
    status, html, _ = await page(rig)
    assert status == 200 and texts.NOT_ENABLED in html


def test_pick_lang_prefers_query_then_weighted_header() -> None:
    assert texts.pick_lang("en", "zh") == "en"
    assert texts.pick_lang(None, "fr, en;q=0.8, zh-CN;q=0.9") == "zh"
    assert texts.pick_lang(None, "en-GB") == "en"
    assert texts.pick_lang(None, "fr") == "zh"
    assert texts.pick_lang("xx", "en;q=bad, zh;q=0.1") == "zh"  # a malformed weight counts as 0
