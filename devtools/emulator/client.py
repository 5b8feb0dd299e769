"""Drive a running emulator from Python: the admin API as methods, and the CLI as a child process.

For the demo and end-to-end tests, which run the emulator out of process::

    async with spawn_emulator(config_path) as base_url, EmulatorClient(base_url) as emu:
        await emu.verify_mp(appid)
        qr = ...  # the sidecar created a QR code; its page shows qr["url"]
        outcome = await emu.scan("alice", qr_url=qr_url)
        print(await emu.phone("alice"))
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

_Part = TypeVar("_Part", list[Any], dict[str, Any])
JsonObject = dict[str, Any]
"""An admin API answer: a decoded JSON object (its values are JSON, hence ``Any``)."""


class EmulatorClientError(Exception):
    """The admin API refused a request; ``status`` and ``error`` are what it answered."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"emulator answered {status}: {error}")
        self.status = status
        self.error = error


class EmulatorClient:
    """Thin async wrapper over ``/_emu``; every method returns the decoded JSON answer."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> EmulatorClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, /, **query: str | int | None
    ) -> JsonObject:
        """The decoded answer; every admin endpoint answers a JSON object, so anything else is refused."""
        if self._session is None:
            raise RuntimeError("use EmulatorClient as an async context manager, or pass a session")
        params = {k: str(v) for k, v in query.items() if v is not None}
        async with self._session.request(method, f"{self.base_url}/_emu{path}", json=body, params=params) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise EmulatorClientError(resp.status, data.get("error", "") if isinstance(data, dict) else str(data))
            if not isinstance(data, dict):
                raise EmulatorClientError(resp.status, f"expected a JSON object, got {type(data).__name__}")
            return data

    async def _part(self, path: str, key: str, kind: type[_Part], /, **query: str | int | None) -> _Part:
        """One member of a GET answer (``{"calls": [...]}`` -> the list), checked to be a ``kind``."""
        value = (await self._call("GET", path, **query)).get(key)
        if not isinstance(value, kind):
            raise EmulatorClientError(200, f"expected {key!r} to be a JSON {kind.__name__}")
        return value

    @staticmethod
    def _target(app: str | None, corp: str | None, agentid: int | None) -> dict[str, str | int]:
        return {k: v for k, v in (("app", app), ("corp", corp), ("agentid", agentid)) if v is not None}

    # control
    async def health(self) -> JsonObject:
        return await self._call("GET", "/health")

    async def config(self) -> JsonObject:
        return await self._call("GET", "/config")

    async def reset(self) -> JsonObject:
        return await self._call("POST", "/reset")

    async def advance_clock(self, seconds: float) -> JsonObject:
        return await self._call("POST", "/clock", {"advance_s": seconds})

    async def add_fault(self, path: str, kind: str, *, times: int | None = 1, **spec: object) -> JsonObject:
        return await self._call("POST", "/faults", {"path": path, "kind": kind, "times": times, **spec})

    async def faults(self) -> list[JsonObject]:
        return await self._part("/faults", "faults", list)

    async def clear_faults(self) -> JsonObject:
        return await self._call("DELETE", "/faults")

    async def revoke_tokens(self, errcode: int = 40001, app: str | None = None) -> JsonObject:
        return await self._call("POST", "/tokens/revoke", {"errcode": errcode, **({"app": app} if app else {})})

    # inspection
    async def token_counts(self) -> dict[str, dict[str, int]]:
        """Successful token fetches: ``{appid or corpid: {kind: count}}``."""
        return await self._part("/tokens", "counts", dict)

    async def calls(self, **filters: str | int) -> list[JsonObject]:
        return await self._part("/calls", "calls", list, **filters)

    async def deliveries(self, **filters: str | int) -> list[JsonObject]:
        return await self._part("/deliveries", "deliveries", list, **filters)

    async def phones(self) -> dict[str, list[JsonObject]]:
        """What every phone shows, by person."""
        return await self._part("/phones", "phones", dict)

    async def phone(self, name: str) -> list[JsonObject]:
        return await self._part(f"/phones/{name}", "messages", list)

    async def pushes(self, **filters: str | int) -> list[JsonObject]:
        return await self._part("/pushes", "pushes", list, **filters)

    async def push(self, push_id: int) -> JsonObject:
        return await self._call("GET", f"/pushes/{push_id}")

    async def qrcodes(self) -> list[JsonObject]:
        return await self._part("/qrcodes", "qrcodes", list)

    async def users(self) -> list[JsonObject]:
        return await self._part("/users", "users", list)

    # people
    async def add_user(self, name: str, **fields: object) -> JsonObject:
        return await self._call("POST", "/users", {"name": name, **fields})

    async def follow(self, name: str, app: str | None = None, *, wait: bool = True) -> JsonObject:
        return await self._call("POST", f"/users/{name}/follow", {**self._target(app, None, None), "wait": wait})

    async def unsubscribe(self, name: str, app: str | None = None, *, wait: bool = True) -> JsonObject:
        return await self._call("POST", f"/users/{name}/unsubscribe", {**self._target(app, None, None), "wait": wait})

    async def scan(
        self, name: str, *, ticket: str | None = None, qr_url: str | None = None, wait: bool = True
    ) -> JsonObject:
        body = {k: v for k, v in (("ticket", ticket), ("qr_url", qr_url)) if v is not None}
        return await self._call("POST", f"/users/{name}/scan", {**body, "wait": wait})

    async def text(
        self,
        name: str,
        content: str,
        *,
        app: str | None = None,
        corp: str | None = None,
        agentid: int | None = None,
        wait: bool = True,
    ) -> JsonObject:
        body = {"content": content, **self._target(app, corp, agentid), "wait": wait}
        return await self._call("POST", f"/users/{name}/text", body)

    async def event(
        self,
        name: str,
        fields: dict[str, Any],
        *,
        app: str | None = None,
        corp: str | None = None,
        agentid: int | None = None,
        wait: bool = True,
    ) -> JsonObject:
        body = {"fields": fields, **self._target(app, corp, agentid), "wait": wait}
        return await self._call("POST", f"/users/{name}/event", body)

    async def wecom_login(self, name: str, login_url: str | None = None, **fields: str | int) -> JsonObject:
        """``login_url`` as the app built it, or ``redirect_uri=``, ``state=``, ``corp=``, ``agentid=``."""
        body = {"login_url": login_url} if login_url is not None else fields
        return await self._call("POST", f"/users/{name}/wecom-login", body)

    async def verify_mp(self, appid: str) -> JsonObject:
        return await self._call("POST", f"/mp/{appid}/verify")

    async def verify_wecom(self, corpid: str, agentid: int) -> JsonObject:
        return await self._call("POST", f"/wecom/{corpid}/{agentid}/verify")


@asynccontextmanager
async def spawn_emulator(
    config_path: Path, *, listen: str = "127.0.0.1:0", python: str = sys.executable, ready_timeout_s: float = 30.0
) -> AsyncIterator[str]:
    """Run ``python -m devtools.emulator`` as a child process; yields its base URL, stops it after."""
    proc = await asyncio.create_subprocess_exec(
        python,
        "-m",
        "devtools.emulator",
        "--config",
        str(config_path),
        "--listen",
        listen,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), ready_timeout_s)
        if not line:
            raise RuntimeError(f"the emulator exited before it was ready (exit code {await proc.wait()})")
        yield str(json.loads(line)["base_url"])
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
