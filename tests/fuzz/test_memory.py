"""Bounded memory: the worst bodies a stranger can send cost the gateway little more than a normal one.

tracemalloc traces every Python allocation in this process (client and server, and expat, whose
allocator CPython routes through PyObject_Malloc) while one hostile request is sent and answered.
The bound is 8 MiB, against inputs that would take gigabytes (billion laughs), tens of MiB
(10 MiB bodies, a gzip bomb) or a stack overflow (deep nesting) if handled naively. Deep nesting
is refused as the parser opens the ninth level, before any tree is built, and entity attacks by
the markup scan before expat sees a byte; the costliest case is the gzip bomb, bounded by the
64 KiB body limit. Large bodies are streamed from one reused 64 KiB buffer, so the client adds
almost nothing to the figure.

Each test prints its peak; ``pytest -rP tests/fuzz/test_memory.py`` shows them (docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import pytest

from tests.fuzz.callbacks import Callbacks, Place, place, url
from tests.fuzz.strategies import ATTACKS, nested
from tests.fuzz.support import RawAnswer, assert_refused, raw_request
from tests.gateway.helpers import message_xml, text_message

BOUND_BYTES = 8 * 1024 * 1024
TEN_MIB = 10 * 1024 * 1024
CHUNK = b"a" * 65536


async def peak_while(work: Callable[[], Awaitable[RawAnswer | tuple[int, str]]]) -> tuple[int, int, str]:
    """(peak traced bytes, status, body) of one request; tracing stops even when it fails."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        answer = await work()
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    if isinstance(answer, RawAnswer):
        return peak, answer.status, answer.body.decode("utf-8", "replace")
    return peak, answer[0], answer[1]


async def stream(port: int, head: bytes, total: int, *, chunked: bool) -> RawAnswer:
    """Send ``head`` then ``total`` bytes of body in 64 KiB writes, then read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        sent = 0
        try:
            while sent < total:
                writer.write(b"10000\r\n" + CHUNK + b"\r\n" if chunked else CHUNK)
                await writer.drain()
                sent += len(CHUNK)
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except ConnectionError:
            pass  # the server answered and closed early: its answer is waiting below
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
        await writer.wait_closed()
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    return RawAnswer(int(head_bytes.split(b" ")[1]), {}, body)


def request_head(account: str, query: dict[str, str], *headers: str) -> bytes:
    lines = [f"POST {url(account)}?{urlencode(query)} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def report(case: str, peak: int) -> None:
    print(f"memory peak {case}: {peak / 1024:.0f} KiB (bound {BOUND_BYTES // 1024} KiB)")


@pytest.mark.parametrize("where", ["plain", "safe", "wecom"])
@pytest.mark.parametrize("attack", ["billion_laughs", "quadratic_blowup", "xxe_file"])
async def test_memory_entity_attacks_stay_bounded(gw: Callbacks, where: Place, attack: str) -> None:
    peak, status, reason = await peak_while(lambda: gw.post(*place(where, ATTACKS[attack].encode("utf-8"))))
    report(f"{attack} ({where})", peak)
    assert_refused(status, reason, 400)
    assert peak < BOUND_BYTES


@pytest.mark.parametrize("where", ["plain", "safe"])
async def test_memory_deep_nesting_stays_bounded(gw: Callbacks, where: Place) -> None:
    depth = 9_000 if where == "plain" else 6_000  # about as deep as fits under the 64 KiB body limit
    peak, status, reason = await peak_while(lambda: gw.post(*place(where, nested(depth).encode("utf-8"))))
    report(f"nesting {depth} deep ({where})", peak)
    assert_refused(status, reason, 400)
    assert peak < BOUND_BYTES


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_memory_ten_mib_body_stays_bounded(gw: Callbacks, chunked: bool) -> None:
    account, query, _ = place("plain", b"")
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {TEN_MIB}"
    head = request_head(account, query, framing)
    peak, status, reason = await peak_while(lambda: stream(gw.port, head, TEN_MIB, chunked=chunked))
    report(f"10 MiB body ({'chunked' if chunked else 'Content-Length'})", peak)
    assert_refused(status, reason, 413)
    assert peak < BOUND_BYTES


async def test_memory_gzip_bomb_stays_bounded(gw: Callbacks) -> None:
    account, query, _ = place("plain", b"")
    bomb = gzip.compress(b"<xml>" + b" " * TEN_MIB + b"</xml>")
    head = request_head(account, query, "Content-Encoding: gzip", f"Content-Length: {len(bomb)}")
    peak, status, reason = await peak_while(lambda: raw_request(gw.port, head + bomb))
    report(f"gzip bomb ({len(bomb)} bytes -> 10 MiB)", peak)
    assert_refused(status, reason, 413)
    assert peak < BOUND_BYTES


async def test_memory_largest_valid_message_for_comparison(gw: Callbacks) -> None:
    """What an honest callback at the body limit costs: the attacks above must cost no more than
    a small multiple of it."""
    content = "绑" * 20_000  # 60 KB of UTF-8, inside the 64 KiB limit
    account, query, body = place("plain", message_xml(text_message(content)).encode("utf-8"))
    peak, status, reason = await peak_while(lambda: gw.post(account, query, body))
    report("largest valid message (plain, 60 KB)", peak)
    assert (status, reason) == (200, "success")
    assert peak < BOUND_BYTES
