"""The limits both tiers' HTTP listeners run under, kept free of the HTTP library (tests/test_split.py).

A review found (issue 10, finding 5) that 125 connections sending their bodies slowly exhausted
a sidecar allowed 128 open files: ``/readyz`` timed out, and asyncio logged "accept() out of
system resource" 97,271 times (54 MB) in 30 s. So, on both tiers:

* a **connection cap** (``server.max_connections``, never more than half the process's open-file
  limit, so accepts, the store and outbound calls always have descriptors left): a connection
  over the cap gets a one-line 503 and is closed at once;
* a **body-read deadline** (``server.body_timeout_s``): :func:`body_deadline` makes a body not
  complete in time fail its read with :class:`BodyDeadlineExpired`, which each tier maps to its
  own 408 error (its error tree is the one place statuses are decided);
* the **accept-failure log rate-limited** (:func:`quiet_accept_errors`): one line per interval
  with the number of repeats, instead of one per failed accept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from common.headers import SERVER_HEADER

log = logging.getLogger("common.listener")

LOG_INTERVAL_S = 10.0
ACCEPT_FAILURE = "socket.accept() out of system resource"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nServer: " + SERVER_HEADER.encode() + b"\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 27\r\nConnection: close\r\n\r\n"
    b"too many connections; retry"
)


class BodyDeadlineExpired(TimeoutError):
    """The request body was not complete within ``server.body_timeout_s``.

    A TimeoutError, so that aiohttp's lingering read after the answer treats it as the end of
    the connection rather than as an unhandled error with a traceback.
    """


class RateLimitedLog:
    """One log line per ``interval_s`` for a repeating event, with how often it happened since."""

    def __init__(self, message: str, level: int, *, interval_s: float = LOG_INTERVAL_S) -> None:
        self._message = message
        self._level = level
        self._interval_s = interval_s
        self._next_at = 0.0
        self._repeats = 0

    def event(self, **extra: Any) -> None:
        now = time.monotonic()
        self._repeats += 1
        if now < self._next_at:
            return
        log.log(self._level, self._message, extra={**extra, "repeats": self._repeats})
        self._repeats = 0
        self._next_at = now + self._interval_s


def connection_cap(configured: int) -> int:
    """``configured``, but at most half the open-file limit (the rest is for the process's own use)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    allowed = max(1, soft // 2)
    if configured > allowed:
        log.warning(
            "max_connections lowered to half the open-file limit",
            extra={"configured": configured, "open_file_limit": soft, "max_connections": allowed},
        )
    return min(configured, allowed)


class _Refused(asyncio.Protocol):
    """A connection over the cap: one 503 line, then closed; it holds its descriptor for no time."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(REFUSAL)
        transport.close()


class _Counted(asyncio.Protocol):
    """Delegates to the real protocol and gives its slot back when the connection ends."""

    def __init__(self, inner: asyncio.Protocol, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        self._inner.connection_lost(exc)


class CappedFactory:
    """A protocol factory that serves at most ``cap`` connections at a time and refuses the rest."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], cap: int) -> None:
        self._factory = factory
        self._cap = cap
        self._open = 0
        self._refusals = RateLimitedLog("connection refused: max_connections reached", logging.WARNING)

    @property
    def open(self) -> int:
        return self._open

    def __call__(self) -> asyncio.Protocol:
        if self._open >= self._cap:
            self._refusals.event(max_connections=self._cap)
            return _Refused()
        self._open += 1
        return _Counted(self._factory(), self._release)

    def _release(self) -> None:
        self._open -= 1


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Rate-limit asyncio's "accept() out of system resource" report; everything else as before."""
    accept_failures = RateLimitedLog(ACCEPT_FAILURE, logging.ERROR)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_FAILURE:
            accept_failures.event(error=type(context.get("exception")).__name__)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


class _Stream(Protocol):
    def is_eof(self) -> bool: ...

    def set_exception(self, exc: BaseException) -> None: ...


@contextlib.contextmanager
def body_deadline(stream: _Stream, timeout_s: float) -> Iterator[None]:
    """While the block runs, a body still incomplete after ``timeout_s`` fails its reads.

    The read (in whichever handler is waiting on it) raises :class:`BodyDeadlineExpired`;
    a body already complete, or a request without one, is never touched.
    """
    if stream.is_eof():
        yield
        return

    def expire() -> None:
        if not stream.is_eof():
            stream.set_exception(BodyDeadlineExpired(f"request body not complete within {timeout_s:g} s"))

    timer = asyncio.get_running_loop().call_later(timeout_s, expire)
    try:
        yield
    finally:
        timer.cancel()


class _Runner(Protocol):
    async def setup(self) -> None: ...

    async def cleanup(self) -> None: ...

    @property
    def server(self) -> Any: ...


async def serve(runner: _Runner, host: str, port: int, max_connections: int) -> None:
    """Listen on ``host:port`` under the cap until SIGTERM or SIGINT, then stop accepting and clean up.

    ``runner`` is an aiohttp ``AppRunner`` (its ``server`` is the request-handler factory); the
    runner's cleanup lets requests in flight finish within its shutdown timeout.
    """
    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    listener: asyncio.Server | None = None
    try:
        cap = connection_cap(max_connections)
        listener = await loop.create_server(CappedFactory(runner.server, cap), host, port)
        for sock in listener.sockets:
            bound = sock.getsockname()
            log.info("listening", extra={"host": bound[0], "port": bound[1], "max_connections": cap})
        await stop.wait()
        log.info("stopping: finishing requests in flight")
    finally:
        if listener is not None:
            listener.close()
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


__all__ = [
    "BodyDeadlineExpired",
    "CappedFactory",
    "RateLimitedLog",
    "body_deadline",
    "connection_cap",
    "quiet_accept_errors",
    "serve",
]
