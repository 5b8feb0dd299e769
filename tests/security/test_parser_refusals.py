"""Finding F6: a request aiohttp's own parser refuses leaves no secret in the log or the answer.

The reviewer sent a legacy BlueKing GET, ``bk_app_secret`` in its query, whose URL was longer
than aiohttp's 8,190-byte line limit, and one holding a single invalid byte. aiohttp refused both
before any of our code ran: ``aiohttp.server`` logged the request line, secret included, at error
level with a traceback, and the 400 body quoted it back. Both tiers run here as real processes
(``python -m sidecar``, ``python -m gateway``) and get the raw bytes over a real socket; the
answer must be a bare 400 and the log one JSON line naming the parser's refusal, no secret.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.gateway.conftest import ACCOUNTS
from tests.gateway.helpers import write_config as gateway_config
from tests.sidecar.helpers import CLIENT_SECRET, SERVER
from tests.sidecar.helpers import write_config as sidecar_config

ROOT = Path(__file__).resolve().parents[2]
SEND = b"/api/c/compapi/cmsi/send_weixin/"
LEGACY_QUERY = b"?bk_app_code=bk_paas&bk_app_secret=" + CLIENT_SECRET.encode() + b"&receiver__username=alice"
BARE_400 = b"400 Bad Request\n"


class Tier:
    """One tier as a process: its port (from its ``listening`` line) and everything it logged."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.log = ""
        self.port = 0

    async def wait_listening(self) -> None:
        assert self.proc.stderr is not None
        async with asyncio.timeout(30):
            while not self.port:
                line = (await self.proc.stderr.readline()).decode()
                assert line, f"exited before listening: {self.log}"
                self.log += line
                if json.loads(line)["msg"] == "listening":
                    self.port = int(json.loads(line)["port"])

    async def ask(self, raw: bytes) -> bytes:
        """Send ``raw`` on a fresh connection; the whole answer (the server closes after a 400)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(raw)
            await writer.drain()
            async with asyncio.timeout(10):
                return await reader.read()
        finally:
            writer.close()

    async def stop(self) -> str:
        """SIGTERM, then the rest of the log."""
        assert self.proc.stderr is not None
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            self.log += (await self.proc.stderr.read()).decode()
            await self.proc.wait()
        return self.log


def config_of(tier: str, tmp_path: Path) -> Path:
    if tier == "gateway":
        return gateway_config(tmp_path, ACCOUNTS)
    return sidecar_config(tmp_path, replace={"server": SERVER.replace("127.0.0.1:8081", "127.0.0.1:0")})


@pytest.fixture(params=["sidecar", "gateway"])
async def tier(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Tier]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", request.param, "--config", str(config_of(request.param, tmp_path)),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    running = Tier(proc)
    try:
        await running.wait_listening()
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def assert_refused_blind(answer: bytes, log: str) -> None:
    """A bare 400, and the refusal logged once as one JSON line without the secret."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") or head.startswith(b"HTTP/1.0 400 "), answer[:200]
    assert body == BARE_400
    assert CLIENT_SECRET not in log and "Traceback" not in log
    refusals = [json.loads(line) for line in log.splitlines() if "refused by the HTTP parser" in line]
    assert [(r["level"], r["status"]) for r in refusals] == [("warning", 400)]


async def test_legacy_get_longer_than_8190_bytes_is_refused_without_logging_or_echoing_the_secret(tier: Tier) -> None:
    raw = b"GET " + SEND + LEGACY_QUERY + b"&data=" + b"x" * 8200 + b" HTTP/1.1\r\nHost: sidecar\r\n\r\n"
    answer = await tier.ask(raw)
    assert_refused_blind(answer, await tier.stop())


async def test_legacy_get_with_one_invalid_byte_is_refused_without_logging_or_echoing_the_secret(tier: Tier) -> None:
    raw = b"GET " + SEND + LEGACY_QUERY + b"&data=\x01 HTTP/1.1\r\nHost: sidecar\r\n\r\n"
    answer = await tier.ask(raw)
    assert_refused_blind(answer, await tier.stop())
