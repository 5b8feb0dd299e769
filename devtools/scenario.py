"""The demo's story, step by step, against a running system: what ``make demo`` and the e2e suite run.

1. WeChat (the emulator) checks the MP server URL: a signed GET through the front to the gateway.
2. WeCom checks its callback URL: an encrypted ``echostr`` the gateway must decrypt.
3. alice binds by scanning: a one-time binding link opens her browser session, the BlueKing
   console endpoint ``get_qrcode`` makes a QR code, alice's phone scans it, WeChat pushes the
   encrypted ``subscribe`` (``EventKey = qrscene_…``) through the gateway and the relay to the
   sidecar, whose passive reply 绑定成功 comes back to her phone; the page sees the binding.
4. bob binds by WeCom login: his link, ``get_login_url``, "log in as bob" on the emulated WeCom
   page, and his browser follows the redirect to the sidecar's ``login_callback``.
5. A BlueKing ``send_weixin`` to ``receiver__username=alice`` (MP template message) and one to
   bob (``account = "corp"``, a WeCom app message), as the configured client app ``bk_paas``.

Each step checks its effect where a user would see it (the phone, the page) and reports one line;
a step whose prerequisite failed is skipped. :func:`phone_transcript` renders what each phone
shows. Nothing here knows whether an nginx sits in front: the emulator was configured with
whatever callback URL the stack was given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from yarl import URL

from devtools.emulator.client import EmulatorClient, EmulatorClientError
from devtools.stack import Stack
from devtools.stack_config import AGENT_ID, CLIENT_APP_CODE, WECOM_ACCOUNT

CONSOLE = "/console/user_center/weixin/"
SEND_WEIXIN = "/api/c/compapi/cmsi/send_weixin/"
BINDING_LINKS = "/api/v1/binding-links"
BIND_OK = "绑定成功"
STATUS_TIMEOUT_S = 10.0

CHANNELS = {
    "mp.reply": "公众号被动回复",
    "mp.template": "公众号模板消息",
    "mp.custom": "公众号客服消息",
    "mp.service_error": "公众号服务不可用",
    "wecom.message": "企业微信应用消息",
    "wecom.reply": "企业微信被动回复",
}


class StepFailed(Exception):
    """A step did not have the effect it should have had; the message is the one-line reason."""


@dataclass(frozen=True)
class StepResult:
    title: str
    ok: bool | None  # None: skipped because a step it needs failed
    detail: str

    @property
    def mark(self) -> str:
        return {True: "✓", False: "✗", None: "–"}[self.ok]

    def line(self) -> str:
        return f"{self.mark} {self.title} — {self.detail}"


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    action: Callable[[], Awaitable[str]]
    needs: tuple[str, ...] = ()  # keys of steps that must have succeeded


@dataclass
class Browser:
    """One person's browser: its own cookie jar (the binding session cookie lives here)."""

    session: aiohttp.ClientSession

    @classmethod
    def open(cls) -> Browser:
        # unsafe=True: keep cookies set by an IP-address host (127.0.0.1), as a browser does.
        jar = aiohttp.CookieJar(unsafe=True)
        return cls(aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)))

    async def close(self) -> None:
        await self.session.close()

    async def get_json(self, url: str) -> dict[str, Any]:
        """The JSON object a page's script would read; anything else fails the step."""
        async with self.session.get(url) as response:
            if response.status != 200:
                raise StepFailed(f"GET {_path(url)} answered HTTP {response.status}: {(await response.text())[:120]}")
            answer = await response.json(content_type=None)
        if not isinstance(answer, dict):
            raise StepFailed(f"GET {_path(url)} answered {type(answer).__name__}, not a JSON object")
        return answer

    async def get_page(self, url: str) -> str:
        async with self.session.get(url) as response:
            if response.status != 200:
                raise StepFailed(f"GET {_path(url)} answered HTTP {response.status}")
            return await response.text()


@dataclass
class Scenario:
    """The steps, run against ``stack`` with ``http`` (a plain session) and the emulator client."""

    stack: Stack
    http: aiohttp.ClientSession
    emu: EmulatorClient
    say: Callable[[str], None] = print
    results: list[StepResult] = field(default_factory=list)
    browsers: dict[str, Browser] = field(default_factory=dict)

    def steps(self) -> list[Step]:
        mode = self.stack.options.mp_mode
        return [
            Step("verify_mp", "MP server-URL verification", self.verify_mp),
            Step("verify_wecom", "WeCom callback-URL verification", self.verify_wecom),
            Step("bind_alice", f"alice binds by scanning the QR code (MP, {mode} mode)", self.bind_alice),
            Step("bind_bob", "bob binds by WeCom login", self.bind_bob),
            Step("send_alice", "send_weixin to alice (MP template message)", self.send_alice, ("bind_alice",)),
            Step("send_bob", "send_weixin to bob (WeCom app message)", self.send_bob, ("bind_bob",)),
        ]

    async def run(self) -> list[StepResult]:
        """Every step in order; a failure skips the steps that need it. Browsers are closed after."""
        done: dict[str, StepResult] = {}
        try:
            for step in self.steps():
                missing = [done[k].title for k in step.needs if done[k].ok is not True]
                if missing:
                    result = StepResult(step.title, None, f"skipped: needs “{missing[0]}”")
                else:
                    result = await _attempt(step.title, step.action)
                done[step.key] = result
                self.results.append(result)
                self.say(result.line())
        finally:
            for browser in self.browsers.values():
                await browser.close()
        return self.results

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    # steps -----------------------------------------------------------------------------------------

    async def verify_mp(self) -> str:
        answer = await self.emu.verify_mp(self.stack.ids.app_id)
        if not answer.get("ok"):
            raise StepFailed(f"HTTP {answer.get('http_status')}: {answer.get('problem') or answer.get('body')!r}")
        return "the gateway checked the signature and echoed echostr"

    async def verify_wecom(self) -> str:
        answer = await self.emu.verify_wecom(self.stack.ids.corp_id, AGENT_ID)
        if not answer.get("ok"):
            raise StepFailed(f"HTTP {answer.get('http_status')}: {answer.get('problem') or answer.get('body')!r}")
        return "the gateway decrypted echostr and answered its plaintext"

    async def bind_alice(self) -> str:
        browser = await self.open_binding_link("alice")
        qr = await browser.get_json(self.sidecar(CONSOLE + "mp/get_qrcode/"))
        if qr.get("result") is not True or not qr.get("content"):
            raise StepFailed(f"get_qrcode answered {qr.get('message') or qr!r}")
        push = await self.emu.scan("alice", qr_url=qr["content"])
        event = push["message"].get("Event", "?")
        if push["status"] != "replied" or push.get("shown") != BIND_OK:
            raise StepFailed(f"the {event} push ended {push['status']}, alice's phone shows {push.get('shown')!r}")
        await self.wait_bound(browser, qr.get("session_id", ""))
        key = push["message"].get("EventKey", "")[:16]
        how = "plaintext" if self.stack.options.mp_mode == "plain" else "encrypted"
        return f"{how} {event} ({key}…) → gateway → relay → sidecar → passive reply “{BIND_OK}” on her phone"

    async def bind_bob(self) -> str:
        browser = await self.open_binding_link("bob", account=WECOM_ACCOUNT)
        login = await browser.get_json(self.sidecar(CONSOLE + "qy/get_login_url/"))
        if login.get("result") is not True or not login.get("url"):
            raise StepFailed(f"get_login_url answered {login.get('message') or login!r}")
        pressed = await self.emu.wecom_login("bob", login_url=login["url"])
        page = await browser.get_page(pressed["redirect_url"])
        if BIND_OK not in page:
            raise StepFailed("the login callback page does not say 绑定成功")
        await self.wait_bound(browser, login.get("session_id", ""))
        return f"WeCom login as {pressed['userid']} → the sidecar's login callback page says “{BIND_OK}”"

    async def send_alice(self) -> str:
        answer = await self.send_weixin("alice")
        shown = await self.latest("alice", "mp.template")
        return f"{answer['message']}; alice's phone: {_one_line(shown)}"

    async def send_bob(self) -> str:
        answer = await self.send_weixin("bob", account=WECOM_ACCOUNT)
        shown = await self.latest("bob", "wecom.message")
        return f"{answer['message']}; bob's phone: {_one_line(shown)}"

    # helpers ---------------------------------------------------------------------------------------

    def sidecar(self, path: str) -> str:
        return self.stack.urls.sidecar + path

    def credentials(self) -> dict[str, str]:
        return {"bk_app_code": CLIENT_APP_CODE, "bk_app_secret": self.stack.ids.client_secret}

    async def post_api(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.sidecar(path), json={**self.credentials(), **body}) as response:
            answer = await response.json(content_type=None)
        if response.status != 200 or not isinstance(answer, dict):
            raise StepFailed(f"POST {path} answered HTTP {response.status}")
        if answer.get("result") is not True:
            raise StepFailed(f"POST {path}: {answer.get('message')}")
        return answer

    async def open_binding_link(self, username: str, *, account: str | None = None) -> Browser:
        """Ask for a one-time link as the client app, open it in ``username``'s own browser."""
        body = {"username": username, **({"account": account} if account else {})}
        link = (await self.post_api(BINDING_LINKS, body))["data"]["url"]
        browser = self.browsers.setdefault(username, Browser.open())
        page = await browser.get_page(link)
        if username not in page:
            raise StepFailed(f"the binding page opened by the link does not name {username}")
        return browser

    async def wait_bound(self, browser: Browser, session_id: str) -> None:
        """Poll ``get_bind_status`` as the page does, until it says bound (or failed)."""
        url = self.sidecar(CONSOLE + "get_bind_status/") + (f"?session={session_id}" if session_id else "")
        deadline = time.monotonic() + STATUS_TIMEOUT_S
        while time.monotonic() < deadline:
            status = await browser.get_json(url)
            if status.get("result") is True:
                return
            if status.get("status") == "failed":
                raise StepFailed(f"get_bind_status: failed: {status.get('message')}")
            await asyncio.sleep(0.2)
        raise StepFailed(f"get_bind_status did not report the binding within {STATUS_TIMEOUT_S:.0f} s")

    async def send_weixin(self, username: str, *, account: str | None = None) -> dict[str, Any]:
        now = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
        data = {"heading": "磁盘空间不足", "message": "web-01 /data 已用 93%", "date": now}
        body = {"receiver__username": username, "data": data, **({"account": account} if account else {})}
        return await self.post_api(SEND_WEIXIN, body)

    async def latest(self, person: str, channel: str) -> str:
        messages = [m for m in await self.emu.phone(person) if m["channel"] == channel]
        if not messages:
            raise StepFailed(f"the send succeeded but {person}'s phone shows no {channel} message")
        return str(messages[-1]["text"])


async def _attempt(title: str, action: Callable[[], Awaitable[str]]) -> StepResult:
    try:
        return StepResult(title, True, await action())
    except StepFailed as exc:
        return StepResult(title, False, str(exc))
    except EmulatorClientError as exc:
        return StepResult(title, False, f"the emulator refused: {exc.error}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return StepResult(title, False, f"{type(exc).__name__}: {exc}"[:200])
    except (KeyError, TypeError, ValueError) as exc:  # an answer without the fields it should have
        return StepResult(title, False, f"unexpected answer ({type(exc).__name__}: {exc})"[:200])


def phone_transcript(phones: dict[str, list[dict[str, Any]]], people: tuple[str, ...] = ("alice", "bob")) -> str:
    """What each phone shows, oldest first; ``people`` are listed even when they received nothing."""
    names = [*people, *sorted(n for n, messages in phones.items() if messages and n not in people)]
    lines = []
    for name in names:
        messages = phones.get(name, [])
        lines.append(f"📱 {name} ({len(messages)} message{'s' if len(messages) != 1 else ''})")
        for message in messages:
            label = CHANNELS.get(message["channel"], message["channel"])
            text_lines = str(message["text"]).splitlines() or [""]
            lines.append(f"   [{label}] {text_lines[0]}")
            lines += [f"   {' ' * (len(label) * 2 + 2)} {extra}" for extra in text_lines[1:]]
    return "\n".join(lines)


async def counters(stack: Stack, http: aiohttp.ClientSession) -> str:
    """The chain in numbers, from both tiers' /metrics."""
    gateway = await stack.metrics(http, "gateway")
    sidecar = await stack.metrics(http, "sidecar")
    callbacks = gateway.value("wxgw_callbacks_total")
    verifications = gateway.value("wxgw_callbacks_total", mode="verify")
    return (
        f"gateway: {callbacks:.0f} callbacks answered ({verifications:.0f} URL verifications), "
        f"{gateway.value('wxgw_relayed_events_total'):.0f} events relayed, "
        f"{gateway.value('wxgw_passive_replies_total', outcome='sent'):.0f} passive replies sent; "
        f"sidecar: {sidecar.value('wxsc_relay_events_total', status='accepted'):.0f} events processed, "
        f"{sidecar.value('wxsc_messages_total'):.0f} messages sent, "
        f"{sidecar.value('wxsc_token_fetches_total'):.0f} access tokens fetched"
    )


def _one_line(text: str) -> str:
    return " / ".join(part for part in text.splitlines() if part.strip())


def _path(url: str) -> str:
    return URL(url).path


__all__ = ["Browser", "Scenario", "Step", "StepFailed", "StepResult", "counters", "phone_transcript"]
