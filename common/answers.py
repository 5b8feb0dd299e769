"""How much of an upstream's answer either tier is willing to hold in memory.

Every answer a tier reads from a peer it does not control — the sidecar's answer to a push, a
lease from a (possibly compromised) gateway, WeChat's API, BlueKing's login check — goes through
:func:`read_capped`. An answer of any size used to be buffered whole: a fake gateway answering
one lease with 768 MiB drove the intranet sidecar to 1.5 GiB. One cap, one place.

The helper reads from an async iterator of chunks (``response.content.iter_chunked(n)``) rather
than from an ``aiohttp.ClientResponse``, so ``common`` stays free of the HTTP library
(tests/test_split.py); each tier turns :class:`AnswerTooLarge` into its own error kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterable

MAX_ANSWER_BYTES = 1024 * 1024  # 100 relay results with 2048-character replies fit comfortably
CHUNK_BYTES = 64 * 1024  # what callers ask ``iter_chunked`` for: peak memory is cap + one chunk


class AnswerTooLarge(Exception):
    """An answer announced or delivered more than ``limit`` bytes; nothing of it is kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit


async def read_capped(
    chunks: AsyncIterable[bytes], *, declared: int | None = None, limit: int = MAX_ANSWER_BYTES
) -> bytes:
    """The whole answer, or AnswerTooLarge as soon as it is known to exceed ``limit``.

    ``declared`` is the answer's Content-Length, when it has one: an answer that says it is too
    large is refused before a byte of it is read. A chunked answer is counted as it arrives and
    refused at the first chunk over the cap, so at most ``limit`` plus one chunk is ever held.
    """
    if declared is not None and declared > limit:
        raise AnswerTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


__all__ = ["CHUNK_BYTES", "MAX_ANSWER_BYTES", "AnswerTooLarge", "read_capped"]
