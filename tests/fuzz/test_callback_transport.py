"""The callback endpoint against hostile HTTP bodies: bad Content-Encoding, oversized and chunked bodies.

These are sent over a raw socket where aiohttp's client would not send them as they are.
"""

from __future__ import annotations

import gzip
import zlib
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.callbacks import Callbacks, place, url
from tests.fuzz.support import FUZZ, assert_refused, raw_request
from tests.gateway.helpers import message_xml, text_message

LIMIT = 64 * 1024  # server.max_body_bytes of the fuzz config (the default)


def request(account: str, query: dict[str, str], body: bytes, *headers: str) -> bytes:
    head = [f"POST {url(account)}?{urlencode(query)} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def valid_body() -> bytes:
    return message_xml(text_message("compressed")).encode("utf-8")


@FUZZ
@given(
    encoding=st.sampled_from(("gzip", "deflate", "x-gzip")),
    garbage=st.binary(min_size=1, max_size=512) | st.sampled_from(("truncated", "trailing")),
)
async def test_callback_corrupt_content_encoding_is_refused_400(
    gw: Callbacks, encoding: str, garbage: bytes | str
) -> None:
    account, query, _ = place("plain", valid_body())
    packed = gzip.compress(valid_body()) if encoding != "deflate" else zlib.compress(valid_body())
    if garbage == "truncated":
        payload = packed[: len(packed) // 2]
    elif garbage == "trailing":
        payload = packed + b"\x00garbage"
    else:
        assert isinstance(garbage, bytes)
        payload = garbage
    depth = gw.spool.stats().depth
    answer = await raw_request(
        gw.port,
        request(account, query, payload, f"Content-Encoding: {encoding}", f"Content-Length: {len(payload)}"),
    )
    if answer.status == 200:  # a deflate stream may decode to a message: then it is one
        assert gw.spool.stats().depth <= depth + 1
        return
    assert_refused(answer.status, answer.body.decode("utf-8", "replace"), 400)
    assert gw.spool.stats().depth == depth


async def test_callback_gzip_bomb_is_refused_413(gw: Callbacks) -> None:
    account, query, _ = place("plain", valid_body())
    bomb = gzip.compress(b"<xml>" + b" " * (10 * 1024 * 1024) + b"</xml>")
    answer = await raw_request(
        gw.port, request(account, query, bomb, "Content-Encoding: gzip", f"Content-Length: {len(bomb)}")
    )
    assert_refused(answer.status, answer.body.decode(), 413)


@FUZZ
@given(size=st.integers(LIMIT + 1, 4 * LIMIT), declared=st.booleans())
async def test_callback_body_over_the_limit_is_refused_413(gw: Callbacks, size: int, declared: bool) -> None:
    """With Content-Length (refused before reading) or chunked (refused once the limit is passed)."""
    account, query, _ = place("plain", valid_body())
    body = b"<xml>" + b"a" * (size - 11) + b"</xml>"
    if declared:
        wire = request(account, query, body, f"Content-Length: {len(body)}")
    else:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[i : i + 8192] for i in
                                                                         range(0, len(body), 8192)))
        wire = request(account, query, chunks + b"0\r\n\r\n", "Transfer-Encoding: chunked")
    depth = gw.spool.stats().depth
    answer = await raw_request(gw.port, wire)
    assert_refused(answer.status, answer.body.decode(), 413)
    assert gw.spool.stats().depth == depth
