"""Just enough of the Chrome DevTools Protocol to drive headless Chromium from a test.

Debian's ``/usr/bin/chromium`` is started with ``--remote-debugging-port=0``; the websocket it
announces on stderr is spoken to with aiohttp's client (no Selenium or Playwright download).
The host resolver maps every name but 127.0.0.1 to "not found", so a page under test can reach
nothing but the local servers, whatever it links to.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-port=0",
)
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CdpError(Exception):
    pass


class Browser:
    """One websocket to the browser; commands return their result, events are collected."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._serial = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        self._serial += 1
        message: dict[str, Any] = {"id": self._serial, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._serial] = future
        await self._ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def new_tab(self, width: int = 520, height: int = 720, *, accept_language: str = "zh-CN,zh;q=0.9") -> Tab:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        tab = Tab(self, attached["sessionId"])
        await tab.send("Page.enable")
        await tab.send("Network.enable")
        await tab.send("Network.setExtraHTTPHeaders", {"headers": {"Accept-Language": accept_language}})
        await tab.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return tab

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._ws.close()

    async def _read(self) -> None:
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif "method" in message:
                self.events.append(message)


class Tab:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, session=self.session)

    async def goto(self, url: str, *, landed: str = "true") -> None:
        """Navigate and wait until the new document is complete and ``landed`` (JS) holds."""
        await self.send("Page.navigate", {"url": url})
        await self.wait_for(f"document.readyState === 'complete' && location.href !== 'about:blank' && ({landed})")

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with contextlib.suppress(CdpError):  # the document may be between navigations
                value = await self.eval(expression)
                if value:
                    return value
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"waited {timeout} s for {expression}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        await self.eval(f"document.querySelector({json.dumps(selector)}).click()")

    async def visible(self, selector: str) -> bool:
        """The element exists, is displayed and has a size on screen."""
        return bool(
            await self.eval(
                f"""(() => {{
                    const el = document.querySelector({json.dumps(selector)});
                    if (!el) return false;
                    const box = el.getBoundingClientRect();
                    return box.width > 0 && box.height > 0 && el.checkVisibility();
                }})()"""
            )
        )

    async def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode((await self.send("Page.captureScreenshot", {"format": "png"}))["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]


@contextlib.asynccontextmanager
async def launch(user_data_dir: Path) -> AsyncIterator[Browser]:
    """Start headless Chromium, connect to it, and stop it (and its children) afterwards."""
    executable = chromium_path()
    assert executable is not None
    process = await asyncio.create_subprocess_exec(
        executable,
        *FLAGS,
        f"--user-data-dir={user_data_dir}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    session = aiohttp.ClientSession()
    browser: Browser | None = None
    drain: asyncio.Task[None] | None = None
    try:
        ws_url = await asyncio.wait_for(_announced(process), 60)
        assert process.stderr is not None
        drain = asyncio.get_running_loop().create_task(_drain(process.stderr))
        ws = await session.ws_connect(ws_url, max_msg_size=0)
        browser = Browser(ws)
        yield browser
    finally:
        if browser is not None:
            await browser.close()
        await session.close()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)


async def _announced(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    while True:
        line = await process.stderr.readline()
        if not line:
            raise RuntimeError("chromium exited before announcing DevTools: " + " | ".join(seen[-5:]))
        text = line.decode("utf-8", "replace").strip()
        seen.append(text)
        found = LISTENING.search(text)
        if found:
            return found.group(1)


async def _drain(stream: asyncio.StreamReader) -> None:
    """Keep reading chromium's stderr so a full pipe never blocks it."""
    while await stream.readline():
        pass
