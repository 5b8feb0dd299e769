"""The three relay endpoints as fuzz targets: the gateway's pull listener (lease, ack) and the
sidecar's push receiver, each with what a valid request looks like and a counter of its effects.

``effects()`` is what an accepted request would move and a refused one must not: leases handed
out, events acknowledged in the spool, rows in the sidecar's inbox.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

import contract
from gateway.metrics import GatewayMetrics
from gateway.spool.queue import Spool
from tests.fuzz.support import is_clear_reason

Send = Callable[[bytes, dict[str, str]], Awaitable[tuple[int, str]]]
UNKNOWN_ID = "evt_" + "f" * 32


def relay_envelope(n: int, account: str = "main", content: str = "hi") -> contract.Envelope:
    message = {"ToUserName": "gh_test", "FromUserName": "oFuzzUser", "CreateTime": "1700000000", "MsgType": "text",
               "Content": content, "MsgId": f"{n:012d}"}  # fixed width: bodies differ only in digits
    return contract.make_envelope(account, "mp", "safe", message, datetime(2026, 11, 28, tzinfo=UTC))


@dataclass
class Target:
    """One relay endpoint: where it is, how to sign for it, a valid payload, its effects."""

    name: str
    secret: str
    clock: Callable[[], float]
    send: Send
    valid: Callable[[], Any]
    effects: Callable[[], Awaitable[float]]

    def signer(self, secret: str | None = None, clock: Callable[[], float] | None = None) -> contract.RelaySigner:
        return contract.RelaySigner([secret or self.secret], clock=clock or self.clock)

    async def signed(self, payload: Any) -> tuple[int, str]:
        body = payload if isinstance(payload, bytes) else contract.dump_json(payload)
        return await self.send(body, self.signer().headers(body))


def assert_relay_refusal(status: int, text: str, *allowed: int) -> None:
    """A relay refusal: the status, and one clear line of reason in the JSON error object both
    tiers answer with. aiohttp's own refusals (the sidecar's 413, a body the HTTP parser cannot
    decode) are plain text: their one line is accepted."""
    assert status in allowed, f"expected one of {allowed}, got {status}: {text[:300]!r}"
    try:
        answer = json.loads(text)
    except ValueError:
        assert status in (400, 413) and is_clear_reason(text), text[:300]
        return
    reason = answer.get("detail") or answer.get("error")
    assert isinstance(reason, str) and is_clear_reason(reason), text[:300]


# Bodies go out as BytesIO: aiohttp warns about (and the suite turns into errors) raw bytes over 1 MiB.


def http_sender(session: aiohttp.ClientSession, url: str) -> Send:
    async def send(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with session.post(url, data=io.BytesIO(body), headers=headers) as response:
            return response.status, await response.text()

    return send


def client_sender(client: TestClient[web.Request, web.Application], path: str) -> Send:
    async def send(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        async with client.post(path, data=io.BytesIO(body), headers=headers) as response:
            return response.status, await response.text()

    return send


def lease_target(session: aiohttp.ClientSession, base: str, secret: str, clock: Callable[[], float],
                 metrics: GatewayMetrics) -> Target:
    async def leases() -> float:
        return metrics.registry.get_sample_value("wxgw_relay_attempts_total", {"mode": "pull"}) or 0.0

    return Target("lease", secret, clock, http_sender(session, base + contract.LEASE_PATH),
                  lambda: {"max": 1, "wait": 0}, leases)


def ack_target(session: aiohttp.ClientSession, base: str, secret: str, clock: Callable[[], float],
               spool: Spool) -> Target:
    async def acked() -> float:
        return float(-spool.stats().depth)  # acknowledging an event lowers the depth

    return Target("ack", secret, clock, http_sender(session, base + contract.ACK_PATH),
                  lambda: {"results": [{"id": UNKNOWN_ID, "status": "accepted", "reply": None}]}, acked)


def push_target(client: TestClient[web.Request, web.Application], secret: str, inbox_db: Path) -> Target:
    counter = iter(range(10**9))

    async def inbox_rows() -> float:
        with sqlite3.connect(inbox_db) as conn:
            return float(conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])

    return Target("push", secret, time.time, client_sender(client, contract.PUSH_PATH),
                  lambda: {"events": [relay_envelope(next(counter))]}, inbox_rows)
