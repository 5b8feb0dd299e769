"""What every fuzz suite shares: the hypothesis profile, the verdict on an answer, raw HTTP.

CI runs each property ``FUZZ_EXAMPLES`` times (default 100), derandomized so a failure in CI
replays locally byte for byte; a deep local run raises the count:

    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/fuzz

The apps under test are started once per test function and fed every example in turn, so a
property also proves that the server keeps answering after all the hostile input before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))

# One profile for every property: reproducible (derandomize, no example database), no per-example
# deadline (an example is an HTTP round trip and a SQLite commit), and fixtures shared across
# examples on purpose (the health check would object to a function-scoped app).
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

MAX_REASON_CHARS = 300


def is_clear_reason(text: str) -> bool:
    """One readable line: not empty, no line break, no traceback, bounded length."""
    stripped = text.strip()
    return (
        bool(stripped)
        and "\n" not in stripped
        and "Traceback" not in stripped
        and len(stripped) <= MAX_REASON_CHARS
    )


def assert_refused(status: int, reason: str, *allowed: int) -> None:
    """A 4xx (one of ``allowed`` when given) with a clear one-line reason."""
    assert 400 <= status < 500, f"expected a 4xx, got {status}: {reason[:200]!r}"
    if allowed:
        assert status in allowed, f"expected one of {allowed}, got {status}: {reason[:200]!r}"
    assert is_clear_reason(reason), f"unclear reason: {reason[:400]!r}"


def is_protocol_refusal(record: logging.LogRecord) -> bool:
    """aiohttp's own refusal of malformed HTTP (a body that does not decode as its Content-Encoding
    says, found by the parser or while aiohttp drains the rest of it after our answer): aiohttp
    logs these at ERROR, but the client got its 400 and no handler code was involved."""
    exc = record.exc_info[1] if record.exc_info else None
    return record.name == "aiohttp.server" and isinstance(exc, HttpProcessingError | web.RequestPayloadError)


class ServerErrors(logging.Handler):
    """Collects every ERROR record logged while a fuzz test runs (an unexpected error in a handler,
    aiohttp's 500 "Error handling request", a failed commit): a fuzz test ends by asserting there
    were none. aiohttp's protocol-level refusals are not crashes and are left out."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not is_protocol_refusal(record):
            self.records.append(record)

    def summary(self) -> str:
        return "; ".join(
            f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[1]!r})" if r.exc_info else "") for r in self.records[:5]
        )


def watch_server_errors() -> Iterator[ServerErrors]:
    """Generator body of the ``server_errors`` fixture: attach to the root logger, then check."""
    handler = ServerErrors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    assert not handler.records, f"{len(handler.records)} errors logged: {handler.summary()}"


@dataclass(frozen=True)
class RawAnswer:
    """A response read off the socket, for requests aiohttp's client will not send."""

    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(port: int, request: bytes, *, timeout_s: float = 10.0) -> RawAnswer:
    """Send ``request`` bytes as they are to 127.0.0.1:``port`` and read one answer (the request
    should say ``Connection: close``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout_s)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(status, headers, body)
