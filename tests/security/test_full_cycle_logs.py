"""Both tiers as real processes through a whole working day: no secret in their logs or metrics.

The system runs as an operator runs it (devtools.stack: ``python -m gateway``, ``python -m
sidecar``, the WeChat emulator as WeChat), push and pull. The day: the demo scenario (URL
verifications, binding by QR scan and by WeCom login, sends to both), plus a send authenticated
in the query string, token reads, a second binding by WeCom login, a link opened twice, and
attacks on both tiers (forged signatures, hostile XML, a wrongly signed relay request).

Then the gateway's and the sidecar's logs (JSON lines, ``logs/<tier>.log``) and ``/metrics`` must
hold none of: every configured secret, the access tokens WeChat issued, binding-link tokens,
the WeCom login code, the browser-session cookie, any full openid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from contract import PUSH_PATH, RelaySigner, dump_json, generate_secret
from devtools.emulator.client import EmulatorClient
from devtools.scenario import CONSOLE, Browser, Scenario
from devtools.stack import Stack, StackOptions
from devtools.stack_config import MP_ACCOUNT, WECOM_ACCOUNT, RelayMode
from tests.security.logcheck import leaks

pytestmark = pytest.mark.e2e

GET_TOKEN = "/api/c/compapi/weixin/get_token/"
SEND = "/api/c/compapi/cmsi/send_weixin/"


async def carol_binds_by_wecom_login(
    scenario: Scenario, emu: EmulatorClient, carol: Browser, link: str
) -> dict[str, str]:
    """Her link (opened twice: the second time is refused), the WeCom login, the callback page."""
    assert "carol" in await carol.get_page(link)
    async with carol.session.get(link) as response:
        assert response.status == 404  # used up
    login = await carol.get_json(scenario.sidecar(CONSOLE + "qy/get_login_url/"))
    pressed = await emu.wecom_login("carol", login_url=login["url"])
    assert "绑定成功" in await carol.get_page(pressed["redirect_url"])
    cookie = next(c for c in carol.session.cookie_jar if c.key == "wxsc_bind")
    return {"wecom_code": URL(pressed["redirect_url"]).query["code"], "session_cookie": cookie.value}


async def more_of_the_day(scenario: Scenario, http: aiohttp.ClientSession, emu: EmulatorClient) -> dict[str, str]:
    """The traffic beyond the demo's steps; answers the credentials it saw pass."""
    stack = scenario.stack
    seen: dict[str, str] = {}
    creds = scenario.credentials()
    for account in (MP_ACCOUNT, WECOM_ACCOUNT):
        async with http.get(scenario.sidecar(GET_TOKEN), params={**creds, "account": account}) as response:
            answer = await response.json()
        assert answer["result"], answer
        seen[f"access_token:{account}"] = answer["data"]["access_token"]
    query = {**creds, "receiver__username": "alice", "data": '{"heading": "h", "message": "in the query"}'}
    async with http.get(scenario.sidecar(SEND), params=query) as response:
        assert (await response.json())["result"]

    link = (await scenario.post_api("/api/v1/binding-links", {"username": "carol", "account": WECOM_ACCOUNT}))
    seen["link_token"] = URL(link["data"]["url"]).path.rsplit("/", 1)[1]
    carol = Browser.open()
    try:
        seen.update(await carol_binds_by_wecom_login(scenario, emu, carol, link["data"]["url"]))
    finally:
        await carol.close()


    mp_callback = f"{stack.urls.gateway}/wechat/{MP_ACCOUNT}/callback"
    forged = {"signature": "0" * 40, "timestamp": "1700000000", "nonce": "1", "echostr": "x"}
    async with http.get(mp_callback, params=forged) as response:
        assert response.status in (403, 400)
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>'
    async with http.post(mp_callback, params=forged, data=hostile) as response:
        assert response.status in (400, 403)
    body = dump_json({"events": []})
    headers = RelaySigner([generate_secret()]).headers(body)
    async with http.post(stack.urls.sidecar + PUSH_PATH, data=body, headers=headers) as response:
        assert response.status == 401
    bad = {**creds, "bk_app_secret": "not-" + stack.ids.client_secret[:6]}
    async with http.get(scenario.sidecar(GET_TOKEN), params=bad) as response:
        assert (await response.json())["result"] is False
    return seen


@pytest.mark.parametrize("relay_mode", ["push", "pull"])
async def test_full_day_leaves_no_secret_in_either_tiers_logs_or_metrics(tmp_path: Path, relay_mode: RelayMode) -> None:
    stack = Stack(tmp_path, StackOptions(relay_mode=relay_mode), ready_timeout_s=60.0)
    metrics: dict[str, str] = {}
    async with stack, aiohttp.ClientSession() as http, EmulatorClient(stack.urls.emulator) as emu:
        scenario = Scenario(stack, http, emu, say=lambda line: None)
        results = await scenario.run()
        assert all(r.ok for r in results), [r.line() for r in results]
        seen = await more_of_the_day(scenario, http, emu)
        for tier, url in (("gateway", stack.urls.gateway), ("sidecar", stack.urls.sidecar)):
            async with http.get(url + "/metrics") as response:
                metrics[tier] = await response.text()
        users: list[dict[str, Any]] = await emu.users()
    openids = {f"openid:{u['name']}": oid for u in users for oid in u["openids"].values()}
    secrets = {**stack.ids.vault, **seen, **openids}

    for tier in ("gateway", "sidecar"):
        log = (tmp_path / "logs" / f"{tier}.log").read_text(encoding="utf-8")
        assert log.count("\n") > 5, f"the {tier} logged almost nothing: {log!r}"
        assert leaks(log, secrets) == [], f"{tier}.log"
        assert leaks(metrics[tier], secrets) == [], f"{tier} /metrics"
