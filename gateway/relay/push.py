"""Push mode: POST batches of spooled events to the sidecar until each one is acknowledged.

A few workers lease batches from the spool (so two never send the same event), sign each body
with the relay secrets (Standard Webhooks), and acknowledge exactly the ids the sidecar returns.
Everything else is "retry later" (relay-contract.md): a failed request gives the whole batch back
and pauses pushing with exponential backoff and full jitter; ids missing from a 200 answer are
delayed on their own so they never hold up the rest of the queue.

The ``aiohttp.ClientSession`` here is the gateway's only outbound connection. It talks to
``push_url`` and nothing else: no proxy from the environment (``trust_env=False``), no redirects,
and no more of an answer than ``common.answers.MAX_ANSWER_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

import contract
from common.answers import CHUNK_BYTES, AnswerTooLarge, read_capped
from common.retry import RetryPolicy
from gateway.config import RelayConfig
from gateway.errors import SpoolUnavailable
from gateway.metrics import GatewayMetrics
from gateway.spool.queue import Leased, Spool

log = logging.getLogger(__name__)

WORKERS = 4  # concurrent in-flight batches while draining a backlog
IDLE_WAKE_S = 5.0  # safety net: re-check the queue this often even without a signal
LEASE_MARGIN_S = 5.0  # an in-flight batch stays leased a little longer than its request can last
MODE = "push"


class PushFailed(Exception):
    """A push request that acknowledged nothing; ``reason`` is a metrics label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Backoff:
    """Shared pause of all push workers after failed requests.

    While the sidecar keeps failing, only worker 0 probes it (after a jittered pause that doubles
    up to the cap); the others wait until a request succeeds, so an outage costs one request per
    pause rather than one per worker.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._failures = 0
        self._resume_at = 0.0
        self._healthy = asyncio.Event()
        self._healthy.set()

    @property
    def failures(self) -> int:
        return self._failures

    def delay(self, attempt: int) -> float:
        """The pause before retry ``attempt`` (``common.retry``: full jitter under the cap)."""
        return self._policy.delay(attempt)

    async def admit(self, worker: int) -> None:
        if self._failures and worker != 0:
            await self._healthy.wait()
        pause = self._resume_at - asyncio.get_running_loop().time()
        if pause > 0:
            await asyncio.sleep(pause)

    def failed(self) -> float:
        self._failures += 1
        self._healthy.clear()
        pause = self.delay(self._failures)
        self._resume_at = asyncio.get_running_loop().time() + pause
        return pause

    def succeeded(self) -> None:
        self._failures = 0
        self._resume_at = 0.0
        self._healthy.set()


class PushRelay:
    """The push workers and their HTTP session; ``start``/``stop`` bracket their life."""

    def __init__(
        self,
        relay: RelayConfig,
        spool: Spool,
        metrics: GatewayMetrics,
        *,
        clock: Callable[[], float] = time.time,
        workers: int = WORKERS,
    ) -> None:
        self._relay = relay
        self._spool = spool
        self._metrics = metrics
        self._signer = contract.RelaySigner([s.reveal() for s in relay.secrets], clock=clock)
        self._backoff = Backoff(RetryPolicy(relay.backoff_initial_s, relay.backoff_max_s))
        self._workers = workers
        self._lease_s = relay.timeout_s + LEASE_MARGIN_S
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._turn = asyncio.Lock()  # held by the one worker looking for work
        self._drained_at: int | None = None  # ready_version at which a lease came back short

    def __repr__(self) -> str:
        return f"PushRelay({self._relay.push_url!r}, workers={self._workers})"

    @property
    def listen_address(self) -> tuple[str, int] | None:
        return None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=self._relay.timeout_s),
            connector=aiohttp.TCPConnector(limit=self._workers),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._tasks = [asyncio.create_task(self._work(i), name=f"relay-push-{i}") for i in range(self._workers)]
        log.info("push relay started", extra={"url": self._relay.push_url, "workers": self._workers})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        log.info("push relay stopped")

    def health(self) -> tuple[bool, str]:
        """Whether the workers run; a failing sidecar alone is not unhealthy (the lag check is)."""
        if not self._tasks or any(task.done() for task in self._tasks):
            return False, "push relay worker is not running"
        if self._backoff.failures:
            return True, f"push relay retrying after {self._backoff.failures} consecutive failures"
        return True, "push relay ok"

    async def _work(self, worker: int) -> None:
        while True:
            await self._backoff.admit(worker)
            try:
                await self._deliver(await self._next_batch())
            except SpoolUnavailable as exc:
                log.error("push relay cannot use the spool", extra={"reason": exc.detail})
                await asyncio.sleep(self._backoff.delay(3))
            except Exception:  # a worker must never die: log, pause, go on
                log.exception("push relay worker error")
                await asyncio.sleep(self._backoff.delay(3))

    async def _next_batch(self) -> list[Leased]:
        """Lease the next batch, waiting for one; one worker at a time looks.

        So a group commit wakes one idle worker, not all of them to race for one batch (the
        losers each paid an empty lease transaction and a next_due read). A lease that came back
        short drained the spool as of ``ready_version``: until that moves (a commit, a release)
        or a wait times out (a delayed event or an expired lease may be due), leasing again
        would find nothing, so the next worker goes straight to waiting. A full batch leaves the
        turn to the next worker at once, so a backlog still drains with every worker busy.
        """
        async with self._turn:
            while True:
                version = self._spool.ready_version
                if version != self._drained_at:
                    batch = await self._spool.lease(self._relay.batch_max, self._lease_s)
                    if len(batch) < self._relay.batch_max:
                        self._drained_at = version
                    if batch:
                        return batch
                if not await self._idle(version):
                    self._drained_at = None  # timed out: something may have come due, so look

    async def _idle(self, version: int) -> bool:
        """Wait for new events or the next due one; True when woken by new events."""
        due = await self._spool.next_due_in()
        return await self._spool.wait_ready(version, IDLE_WAKE_S if due is None else min(due, IDLE_WAKE_S))

    async def _deliver(self, batch: list[Leased]) -> None:
        ids = [item.id for item in batch]
        self._metrics.relay_attempts.labels(MODE).inc()
        try:
            results = await self._post(contract.events_body(item.body for item in batch))
        except PushFailed as exc:
            self._metrics.relay_failures.labels(MODE, exc.reason).inc()
            await self._give_back(ids, 0.0)
            pause = self._backoff.failed()
            log.warning(
                "push relay failed; retrying later",
                extra={"reason": exc.reason, "detail": exc.detail, "events": len(ids), "retry_in_s": round(pause, 3)},
            )
            return
        except asyncio.CancelledError:
            await self._give_back(ids, 0.0)
            raise
        self._backoff.succeeded()
        await self._settle(batch, results)

    async def _settle(self, batch: list[Leased], results: list[contract.Result]) -> None:
        """Ack exactly the returned ids of this batch; delay the ones the sidecar left out."""
        sent = {item.id for item in batch}
        ours = [r for r in results if r["id"] in sent]
        if len(ours) != len(results):
            log.warning("push answer names events not in the batch", extra={"ignored": len(results) - len(ours)})
        acked = await self._spool.ack(ours)
        self._metrics.relayed.labels(MODE).inc(acked)
        answered = {r["id"] for r in ours}
        missing = [item for item in batch if item.id not in answered]
        if missing:
            self._metrics.relay_failures.labels(MODE, "missing_ids").inc()
            log.warning("push answer left events unacknowledged; retrying them later", extra={"events": len(missing)})
            for item in missing:
                await self._spool.release([item.id], self._backoff.delay(item.attempts))

    async def _give_back(self, ids: list[str], delay_s: float) -> None:
        with contextlib.suppress(SpoolUnavailable):
            await self._spool.release(ids, delay_s)

    async def _post(self, body: bytes) -> list[contract.Result]:
        """One signed POST of ``body`` (``{"events": [...]}``); the parsed results of a 200 answer, else PushFailed."""
        if self._session is None:
            raise RuntimeError("PushRelay.start() was not called")
        try:
            async with self._session.post(
                self._relay.push_url, data=body, headers=self._signer.headers(body), allow_redirects=False
            ) as response:
                answer = await read_capped(
                    response.content.iter_chunked(CHUNK_BYTES), declared=response.content_length
                )
                status = response.status
        except AnswerTooLarge as exc:
            raise PushFailed("malformed_answer", str(exc)) from None
        except TimeoutError:
            raise PushFailed("timeout", f"no answer within {self._relay.timeout_s} s") from None
        except aiohttp.ClientError as exc:
            raise PushFailed("connection", f"{exc.__class__.__name__}: {exc}"[:200]) from None
        if status != 200:
            reason = "unauthorized" if status == 401 else "server_error" if status >= 500 else "http_status"
            raise PushFailed(reason, f"HTTP {status}: {answer[:200].decode('utf-8', 'replace')}")
        try:
            return contract.parse_results(contract.load_json(answer))
        except contract.ContractError as exc:
            raise PushFailed("malformed_answer", str(exc)[:200]) from None

