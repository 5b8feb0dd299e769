"""The relay receiver (push mode) and the relay pull client, per relay-contract.md.

Both feed the same exactly-once inbox (``sidecar.relay.inbox.Dispatcher``):

* push — ``POST /relay/v1/events`` from the gateway: signature verified (401 + JSON reason,
  logged), body validated (400), up to 100 events processed in order in one inbox commit,
  results answered 200 (503 and nothing committed when the store fails);
* pull — when ``[relay] mode = "pull"``: a background task long-polls the gateway's
  ``/relay/v1/lease``, processes each lease in one inbox commit and acknowledges it to
  ``/relay/v1/ack``, both requests signed; while the
  gateway is unreachable it backs off (``common.retry``: full jitter, capped). Its HTTP session ignores
  proxy environment variables: the gateway is reached directly, not through the egress proxy.
  An answer over ``common.answers.MAX_ANSWER_BYTES`` is a failed lease (refused, logged, backed
  off); its events stay leased at the gateway and come again when the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from common.answers import CHUNK_BYTES, AnswerTooLarge, read_capped
from common.retry import RetryPolicy
from contract import (
    ACK_PATH,
    LEASE_PATH,
    PUSH_PATH,
    ContractError,
    Envelope,
    RelaySigner,
    RelayVerifier,
    Result,
    SignatureError,
    dump_json,
    load_json,
    parse_events,
    results_body,
)
from sidecar.config import RelayConfig
from sidecar.errors import MalformedRequest, PullError, RelayAuthError, SidecarError
from sidecar.keys import CLOCK, CONFIG, DISPATCHER, METRICS, STORE
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher
from sidecar.store import Store

log = logging.getLogger(__name__)

VERIFIER = web.AppKey("relay_verifier", RelayVerifier)


def setup(app: web.Application) -> None:
    """Route the push endpoint; in pull mode, run the pull client while the app runs."""
    config = app[CONFIG].relay
    app[VERIFIER] = RelayVerifier([s.reveal() for s in config.secrets], clock=app[CLOCK])
    app.router.add_post(PUSH_PATH, receive_events)
    if config.mode == "pull":
        app.cleanup_ctx.append(pull_ctx)


async def receive_events(request: web.Request) -> web.Response:
    try:
        body = await request.read()
    except web.RequestPayloadError:  # a Content-Encoding that does not decode, a body cut short
        raise MalformedRequest("body could not be read: bad Content-Encoding or cut short") from None
    metrics = request.app[METRICS]
    try:
        request.app[VERIFIER].verify(body, request.headers)
    except SignatureError as exc:
        metrics.relay_rejections.labels("signature").inc()
        log.warning("relay request refused", extra={"reason": str(exc), "peer": request.remote})
        raise RelayAuthError(str(exc)) from None
    try:
        events = parse_events(load_json(body))
    except ContractError as exc:
        metrics.relay_rejections.labels("malformed").inc()
        log.warning("relay request malformed", extra={"reason": str(exc)})
        raise MalformedRequest(str(exc)) from None
    results = await process_all(request.app[DISPATCHER], request.app[STORE], events)
    return web.Response(body=results_body(results), content_type="application/json")


async def process_all(dispatcher: Dispatcher, store: Store, events: list[Envelope]) -> list[Result]:
    """The whole request in one inbox commit; a StoreError commits none of it (503, sent again)."""
    return await dispatcher.process_batch(store, events)


class PullClient:
    """Long-polls the gateway for events and acknowledges what the inbox committed."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: RelayConfig,
        dispatcher: Dispatcher,
        store: Store,
        metrics: SidecarMetrics,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._config = config
        self._dispatcher = dispatcher
        self._store = store
        self._signer = RelaySigner([s.reveal() for s in config.secrets], clock=clock)
        self._metrics = metrics
        self._sleep = sleep
        self._retry = RetryPolicy(config.backoff_initial_s, config.backoff_max_s)

    def __repr__(self) -> str:
        return f"PullClient({self._config.pull_url!r})"

    async def run(self) -> None:
        """Forever, until cancelled: lease, process, ack; back off while the gateway fails."""
        failures = 0
        while True:
            try:
                started = time.monotonic()
                count = await self.poll_once()
                failures = 0
                if count == 0 and time.monotonic() - started < 1.0:
                    await self._sleep(self._config.backoff_initial_s)  # a gateway that does not long-poll
            except SidecarError as exc:
                failures += 1
                delay = self._retry.delay(failures)
                log.warning("relay pull failed", extra={"reason": str(exc), "retry_in_s": round(delay, 2)})
                await self._sleep(delay)

    async def poll_once(self) -> int:
        """One lease → process → ack round; returns how many events were processed."""
        events = await self._lease()
        if not events:
            return 0
        # One inbox commit for the lease; on a StoreError nothing is acked and the lease expires.
        results = await self._dispatcher.process_batch(self._store, events)
        await self._ack(results)
        return len(results)

    async def _lease(self) -> list[Envelope]:
        body = dump_json({"max": self._config.lease_max, "wait": self._config.lease_wait_s})
        answer = await self._post(LEASE_PATH, body, self._config.lease_wait_s + self._config.timeout_s, "lease")
        try:
            return parse_events(load_json(answer))
        except ContractError as exc:
            self._count("lease")
            raise PullError(f"lease answer malformed: {exc}") from None

    async def _ack(self, results: list[Result]) -> None:
        await self._post(ACK_PATH, results_body(results), self._config.timeout_s, "ack")

    async def _post(self, path: str, body: bytes, timeout_s: float, stage: str) -> bytes:
        url = self._config.pull_url + path
        try:
            # Never follow a redirect: the gateway sits in the DMZ, and a compromised one could
            # otherwise send the sidecar to any intranet address the DMZ itself cannot reach.
            async with self._session.post(
                url,
                data=body,
                headers=self._signer.headers(body),
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                # A compromised gateway could answer with any size: never buffer more than the cap.
                raw = await read_capped(response.content.iter_chunked(CHUNK_BYTES), declared=response.content_length)
                status = response.status
        except AnswerTooLarge as exc:
            self._count(stage)
            raise PullError(f"{stage}: {exc}") from None
        except TimeoutError:
            self._count(stage)
            raise PullError(f"{stage}: no answer within {timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            self._count(stage)
            raise PullError(f"{stage}: {type(exc).__name__}") from None
        if status != 200:
            self._count(stage)
            raise PullError(f"{stage}: HTTP {status}")
        return raw

    def _count(self, stage: str) -> None:
        self._metrics.pull_errors.labels(stage).inc()


async def pull_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG].relay
    session = aiohttp.ClientSession(trust_env=False)
    client = PullClient(session, config, app[DISPATCHER], app[STORE], app[METRICS], clock=app[CLOCK])
    task = asyncio.get_running_loop().create_task(client.run())
    log.info("relay pull client started", extra={"pull_url": config.pull_url})
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()


__all__ = ["VERIFIER", "PullClient", "PullError", "process_all", "receive_events", "setup"]
