"""Pull mode: a separate listener the sidecar leases events from and acknowledges them to.

For firewalls that forbid DMZ -> intranet connections (relay-contract.md, "Pull mode"). The
listener is its own aiohttp application on ``relay.pull_host:pull_port`` (never proxied by
nginx) with exactly two routes; every request must carry a valid Standard Webhooks signature
made with the relay secrets. A lease long-polls: it answers as soon as any event is ready, or
with an empty list after ``wait`` seconds, and at once when the gateway shuts down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

import contract
from common.headers import plain_server_header
from common.http_server import AppRunner
from gateway.config import RelayConfig
from gateway.errors import SpoolUnavailable
from gateway.metrics import GatewayMetrics
from gateway.spool.queue import Leased, Spool

log = logging.getLogger(__name__)

MODE = "pull"
MAX_WAIT_S = 25
MAX_BODY_BYTES = 1024 * 1024  # an ack of 100 results with long replies fits comfortably
SHUTDOWN_TIMEOUT_S = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_lease_request(obj: Any) -> tuple[int, float]:
    """``{"max": 1..100, "wait": 0..25}`` -> (max, wait); both optional (100 and 0)."""
    if not isinstance(obj, dict):
        raise contract.MalformedPayload('lease body must be an object like {"max": 100, "wait": 25}')
    limit = obj.get("max", contract.MAX_BATCH)
    wait = obj.get("wait", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= contract.MAX_BATCH:
        raise contract.MalformedPayload(f"'max' must be an integer from 1 to {contract.MAX_BATCH}")
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT_S:
        raise contract.MalformedPayload(f"'wait' must be a number of seconds from 0 to {MAX_WAIT_S}")
    return limit, float(wait)


class PullRelay:
    """The pull listener; ``start``/``stop`` bracket its life (stop ends long-polls first)."""

    def __init__(
        self,
        relay: RelayConfig,
        spool: Spool,
        metrics: GatewayMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._relay = relay
        self._spool = spool
        self._metrics = metrics
        self._verifier = contract.RelayVerifier([s.reveal() for s in relay.secrets], clock=clock)
        self._stopping = asyncio.Event()
        self._runner: AppRunner | None = None
        self._address: tuple[str, int] | None = None

    def __repr__(self) -> str:
        return f"PullRelay({self._relay.pull_host}:{self._relay.pull_port})"

    @property
    def listen_address(self) -> tuple[str, int] | None:
        """Where the listener is bound (the real port when configured with port 0)."""
        return self._address

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY_BYTES)
        app.on_response_prepare.append(plain_server_header)
        app.router.add_post(contract.LEASE_PATH, self._lease)
        app.router.add_post(contract.ACK_PATH, self._ack)
        return app

    async def start(self) -> None:
        self._runner = AppRunner(self.build_app(), shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._relay.pull_host, self._relay.pull_port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        host, port = self._runner.addresses[0][:2]
        self._address = (str(host), int(port))
        log.info("pull relay listening", extra={"host": host, "port": port})

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("pull relay stopped")

    def health(self) -> tuple[bool, str]:
        if self._runner is None or self._stopping.is_set():
            return False, "pull relay listener is not running"
        return True, "pull relay listening"

    # -- handlers -------------------------------------------------------------------------------

    async def _lease(self, request: web.Request) -> web.Response:
        limit, wait_s = parse_lease_request(contract.load_json(await self._authentic_body(request)))
        self._metrics.relay_attempts.labels(MODE).inc()
        leased = await self._long_poll(request, min(limit, self._relay.batch_max), wait_s)
        if leased:
            log.info("pull relay leased events", extra={"events": len(leased)})
        body = contract.events_body((item.body for item in leased), lease_seconds=self._relay.lease_s)
        return web.Response(status=200, body=body, content_type="application/json")

    async def _ack(self, request: web.Request) -> web.Response:
        results = contract.parse_results(contract.load_json(await self._authentic_body(request)))
        acked = await self._spool.ack(results)
        self._metrics.relayed.labels(MODE).inc(acked)
        return _json(200, {"acked": acked})

    async def _authentic_body(self, request: web.Request) -> bytes:
        try:
            body = await request.read()
        except web.RequestPayloadError:  # a Content-Encoding that does not decode, a body cut short
            raise contract.MalformedPayload("body could not be read: bad Content-Encoding or cut short") from None
        self._verifier.verify(body, request.headers)
        return body

    async def _long_poll(self, request: web.Request, limit: int, wait_s: float) -> list[Leased]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while not self._stopping.is_set() and not _gone(request):
            version = self._spool.ready_version
            leased = await self._spool.lease(limit, self._relay.lease_s)
            remaining = deadline - loop.time()
            if leased or remaining <= 0:
                return leased
            due = await self._spool.next_due_in()
            await self._wait(version, remaining if due is None else min(due, remaining))
        return []

    async def _wait(self, version: int, timeout_s: float) -> None:
        """Until an event may be ready, the timeout passes or the listener stops."""
        ready = asyncio.ensure_future(self._spool.wait_ready(version, timeout_s))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ready, stopping):
                task.cancel()
            await asyncio.gather(ready, stopping, return_exceptions=True)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every failure as JSON ``{"error": reason}`` with its status; logged with the reason."""
        try:
            return await handler(request)
        except contract.SignatureError as exc:
            return self._refuse(request, 401, "unauthorized", str(exc))
        except contract.ContractError as exc:
            return self._refuse(request, 400, "malformed", str(exc))
        except SpoolUnavailable as exc:
            log.error("pull relay request failed: spool unavailable", extra={"reason": exc.detail})
            return _json(503, {"error": "spool unavailable"})
        except web.HTTPException as exc:
            return _json(exc.status, {"error": exc.reason})

    def _refuse(self, request: web.Request, status: int, reason: str, detail: str) -> web.Response:
        self._metrics.relay_failures.labels(MODE, reason).inc()
        log.warning(
            "pull relay request refused",
            extra={"status": status, "reason": detail, "path": request.path, "remote": request.remote},
        )
        return _json(status, {"error": detail})


def _gone(request: web.Request) -> bool:
    """The client hung up: leasing for it would only hide events until the lease expires."""
    return request.transport is None or request.transport.is_closing()


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(status=status, body=contract.dump_json(payload), content_type="application/json")
