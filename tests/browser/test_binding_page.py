"""The binding page in real headless Chromium, against a running sidecar and a WeChat stand-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.binding import texts
from tests.browser.cdp import Browser, Tab
from tests.browser.conftest import Stack

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"
SHOWN = "document.body && document.body.getAttribute('data-shown')"


async def open_link(browser: Browser, stack: Stack, username: str, *, lang: str = "", **extra: str) -> Tab:
    url = await stack.link(username, **extra)
    tab = await browser.new_tab()
    await tab.goto(url + (f"?lang={lang}" if lang else ""), landed="location.pathname === '/bind/'")
    return tab


async def shoot(tab: Tab, path: Path) -> None:
    data = await tab.screenshot(path)
    assert data.startswith(PNG) and len(data) > 5_000


async def test_browser_qr_code_is_visible_then_page_flips_to_success_after_scan(
    browser: Browser, stack: Stack, shots: Path
) -> None:
    tab = await open_link(browser, stack, "alice")
    assert await tab.visible("#qrcode svg")
    box = await tab.eval("(b => [b.width, b.height])(document.querySelector('#qrcode svg').getBoundingClientRect())")
    assert box[0] >= 150 and box[0] == box[1]
    assert not await tab.visible("[data-state=success]")
    await shoot(tab, shots / "binding-qr.png")

    assert await stack.scan(stack.wechat.scenes[-1], "oAlice0001") == texts.BIND_OK

    await tab.wait_for(f"{SHOWN} === 'success'", timeout=10)
    assert await tab.visible("[data-state=success]")
    assert not await tab.visible("#qrcode svg")
    await shoot(tab, shots / "binding-success.png")


async def test_browser_page_loads_nothing_from_other_origins(browser: Browser, stack: Stack) -> None:
    tab = await open_link(browser, stack, "alice")
    await tab.wait_for("performance.getEntriesByType('resource').length >= 1", timeout=5)  # the first poll
    requested = tab.requested_urls()
    assert requested, "the browser made no request at all"
    for url in requested:
        assert url.startswith((stack.base, "data:")), url


async def test_browser_refused_scan_flips_page_to_the_reason(browser: Browser, stack: Stack, shots: Path) -> None:
    await stack.store.bindings.bind("main", "bob", "oAlice0001", now=0)
    tab = await open_link(browser, stack, "alice")
    assert await stack.scan(stack.wechat.scenes[-1], "oAlice0001", follower=True) == texts.WX_ID_TAKEN
    await tab.wait_for(f"{SHOWN} === 'failed'", timeout=10)
    assert await tab.eval("document.getElementById('failure-reason').textContent") == texts.WX_ID_TAKEN
    await shoot(tab, shots / "binding-refused.png")


async def test_browser_english_page_translates_the_refusal(browser: Browser, stack: Stack, shots: Path) -> None:
    await stack.store.bindings.bind("main", "bob", "oAlice0001", now=0)
    tab = await open_link(browser, stack, "alice", lang="en")
    assert await tab.eval("document.documentElement.lang") == "en"
    await shoot(tab, shots / "binding-qr-en.png")
    await stack.scan(stack.wechat.scenes[-1], "oAlice0001")
    await tab.wait_for(f"{SHOWN} === 'failed'", timeout=10)
    reason = await tab.eval("document.getElementById('failure-reason').textContent")
    assert reason == texts.EN_REASONS[texts.WX_ID_TAKEN]


async def test_browser_bound_user_unbinds_with_the_button(browser: Browser, stack: Stack, shots: Path) -> None:
    await stack.store.bindings.bind("main", "alice", "oAlice0001", now=0)
    tab = await open_link(browser, stack, "alice")
    assert await tab.visible("#unbind")
    await shoot(tab, shots / "binding-bound.png")
    await tab.click("#unbind")
    assert await tab.visible("#unbind-yes")
    await tab.click("#unbind-yes")  # a real same-origin POST: the Origin check lets it through
    await tab.wait_for("!!document.querySelector('#qrcode svg')", timeout=10)  # reloaded, unbound
    assert await stack.store.bindings.get("main", "alice") is None


async def test_browser_wecom_page_shows_login_button(browser: Browser, stack: Stack, shots: Path) -> None:
    tab = await open_link(browser, stack, "bob", account="corp")
    assert await tab.visible("#wecom-login")
    href = await tab.eval("document.getElementById('wecom-login').href")
    assert href.startswith("https://open.work.weixin.qq.com/wwopen/sso/qrConnect?appid=ww1234567890&agentid=1000002")
    await shoot(tab, shots / "binding-wecom.png")


async def test_browser_wecom_callback_success_page(browser: Browser, stack: Stack, shots: Path) -> None:
    tab = await open_link(browser, stack, "bob", account="corp")
    href = await tab.eval("document.getElementById('wecom-login').href")
    state = href.split("state=")[1].split("&")[0]
    await tab.goto(f"{stack.base}/console/user_center/weixin/qy/login_callback/?code=GOOD&state={state}")
    assert await tab.eval("document.getElementById('message').textContent") == texts.BIND_OK_CLOSING
    await shoot(tab, shots / "binding-wecom-success.png")
    binding = await stack.store.bindings.get("corp", "bob")
    assert binding is not None and binding.wx_id == "zhangsan"


async def test_browser_wecom_callback_failure_page(browser: Browser, stack: Stack, shots: Path) -> None:
    tab = await open_link(browser, stack, "bob", account="corp")
    href = await tab.eval("document.getElementById('wecom-login').href")
    state = href.split("state=")[1].split("&")[0]
    await tab.goto(f"{stack.base}/console/user_center/weixin/qy/login_callback/?code=BAD&state={state}")
    assert await tab.eval("document.querySelector('[data-result]').getAttribute('data-result')") == "failed"
    assert await tab.eval("document.getElementById('message').textContent") == texts.CODE_INVALID
    await shoot(tab, shots / "binding-failure.png")
