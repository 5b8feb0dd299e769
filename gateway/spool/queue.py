"""The durable spool: every verified callback is committed here before WeChat is answered.

Why a dedicated thread rather than aiosqlite: aiosqlite hops to its thread once per statement,
and coroutines sharing its connection interleave statements inside each other's transactions
unless every transaction holds an asyncio lock across several hops. Here one single-thread
executor owns the connection and runs *whole transactions* (``gateway.spool.db``), so each unit
is atomic by construction, costs one hop, and the thread is the single writer SQLite wants.

Group commit: ``commit()`` only queues the envelope; one writer task gathers everything queued
within ``commit_window_ms`` (or until a group is full), inserts it in one transaction with one
fsync, then answers every caller. Concurrent callbacks thus share the cost of durability.

Replies: the callback path registers its reply waiter (``gateway.spool.replies``) before it
queues the event, so an acknowledgement can never slip between the commit and the wait, and a
new event's wait needs no read of its stored state.

Memory stays bounded with any backlog: the depth and the oldest unacknowledged age are kept as
counters (counted once at open), and the relay reads ready events a batch at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import contract
from gateway.config import SpoolConfig
from gateway.errors import SpoolUnavailable
from gateway.metrics import GatewayMetrics
from gateway.spool.db import NewRow, SpoolDb
from gateway.spool.replies import ReplyFuture, ReplyWaiters

log = logging.getLogger(__name__)

T = TypeVar("T")

GROUP_MAX = 256  # events per group commit; the top bucket of metrics.commit_batch
PRUNE_INTERVAL_S = 60.0
PRUNE_CHUNK = 2000  # rows per prune transaction, so commits never wait long behind a prune
WRITABLE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class SpoolStats:
    depth: int
    oldest_unacked_age_s: float


@dataclass(frozen=True)
class Leased:
    """An event handed to a relay, with how many times it has been handed out (this one included).

    ``body`` is the envelope's JSON exactly as committed (``contract.dump_json``), so a relay can
    splice it into its request body (``contract.events_body``) without parsing and re-serialising it.
    """

    id: str
    body: str
    attempts: int


@dataclass
class _Queued:
    envelope: contract.Envelope
    future: asyncio.Future[bool]
    queued_at: float  # perf_counter, for metrics.commit_latency


class Spool:
    """Durable queue of relayed events: commit, lease, ack, wait for replies. Use ``await Spool.open()``."""

    def __init__(
        self,
        config: SpoolConfig,
        metrics: GatewayMetrics,
        clock: Callable[[], float],
        executor: ThreadPoolExecutor,
        db: SpoolDb,
    ) -> None:
        self._loop = asyncio.get_running_loop()  # kept: each get_running_loop() costs a getpid() syscall
        self._config = config
        self._metrics = metrics
        self._clock = clock
        self._executor = executor
        self._db = db
        self._window_s = config.commit_window_ms / 1000
        self._queue: list[_Queued] = []
        self._queued = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._closed = False
        self._depth = 0
        self._oldest: float | None = None
        self._ready_version = 0
        self._ready = asyncio.Event()
        self._replies = ReplyWaiters(self._loop, metrics)
        self._writer: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Spool({str(self._config.path)!r}, depth={self._depth})"

    @classmethod
    async def open(
        cls, config: SpoolConfig, metrics: GatewayMetrics, *, clock: Callable[[], float] = time.time
    ) -> Spool:
        """Open (or create) the spool file; raise SpoolUnavailable if it cannot be used."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        loop = asyncio.get_running_loop()
        try:
            db, depth, oldest = await loop.run_in_executor(executor, _load, config)
        except (sqlite3.Error, OSError) as exc:
            executor.shutdown(wait=False)
            raise SpoolUnavailable(f"cannot open spool: {exc}") from exc
        spool = cls(config, metrics, clock, executor, db)
        spool._depth, spool._oldest = depth, oldest
        spool._start()
        log.info("spool open", extra={"path": str(config.path), "depth": depth})
        return spool

    def _start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name="spool-writer")
        self._pruner = asyncio.create_task(self._prune_loop(), name="spool-pruner")

    async def close(self) -> None:
        """Refuse new commits, finish the ones queued, then close the file."""
        if self._closing:
            return
        self._closing = True
        self._queued.set()
        if self._writer is not None:
            await self._writer
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        self._closed = True
        with contextlib.suppress(sqlite3.Error):
            await asyncio.get_running_loop().run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=False)
        self._replies.release_all()
        self._signal_ready()
        log.info("spool closed", extra={"path": str(self._config.path), "depth": self._depth})

    # -- committing -----------------------------------------------------------------------------

    async def commit(self, envelope: contract.Envelope) -> bool:
        """Spool ``envelope`` durably; True if new, False if its id was already spooled.

        Returns only after the group transaction holding it has been fsynced.
        """
        if self._closing:
            raise SpoolUnavailable("spool is shutting down")
        future: asyncio.Future[bool] = self._loop.create_future()
        self._queue.append(_Queued(envelope, future, time.perf_counter()))
        self._queued.set()
        if len(self._queue) >= GROUP_MAX:
            self._full.set()
        return await future

    async def _write_loop(self) -> None:
        while True:
            await self._queued.wait()
            if not self._queue:
                if self._closing:
                    return
                self._queued.clear()
                continue
            if self._window_s > 0 and not self._closing and len(self._queue) < GROUP_MAX:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._window_s):
                        await self._full.wait()
            group, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
            if len(self._queue) < GROUP_MAX:
                self._full.clear()
            await self._write_group(group)

    async def _write_group(self, group: list[_Queued]) -> None:
        now = self._clock()
        rows = [NewRow(q.envelope["id"], q.envelope["account"], _dumps(q.envelope), now) for q in group]
        try:
            fresh = await self._run(partial(self._db.insert, rows))
        except Exception as exc:  # every caller must get an answer, whatever went wrong
            detail = exc.detail if isinstance(exc, SpoolUnavailable) else f"commit failed: {exc!r}"
            log.error("spool group commit failed", extra={"events": len(group), "reason": detail})
            for queued in group:
                if not queued.future.done():
                    queued.future.set_exception(SpoolUnavailable(detail))
            return
        done = time.perf_counter()
        self._metrics.commit_batch.observe(len(group))
        added = sum(fresh)
        if added:
            self._depth += added
            if self._oldest is None:
                self._oldest = now
            self._signal_ready()
        for queued, is_new in zip(group, fresh, strict=True):
            self._metrics.commit_latency.observe(done - queued.queued_at)
            if not queued.future.done():
                queued.future.set_result(is_new)

    # -- reading --------------------------------------------------------------------------------

    async def contains(self, event_id: str) -> bool:
        """Whether the id is spooled or still remembered as a dedupe key after pruning."""
        return await self._run(partial(self._db.contains, event_id))

    def stats(self) -> SpoolStats:
        """Depth and lag from in-memory counters: cheap enough for every scrape and /readyz.

        The owner of the metrics copies these into the spool gauges at scrape time.
        """
        if not self._depth or self._oldest is None:
            return SpoolStats(self._depth, 0.0)
        return SpoolStats(self._depth, max(0.0, self._clock() - self._oldest))

    async def writable(self) -> bool:
        """A durable probe write through the same thread as commits (False on error or stall)."""
        if self._closing:
            return False
        try:
            async with asyncio.timeout(WRITABLE_TIMEOUT_S):
                await self._run(partial(self._db.probe, self._clock()))
        except (SpoolUnavailable, TimeoutError) as exc:
            log.warning("spool not writable", extra={"reason": str(exc) or exc.__class__.__name__})
            return False
        return True

    # -- replies --------------------------------------------------------------------------------

    async def commit_and_wait_reply(
        self, envelope: contract.Envelope, deadline: float
    ) -> tuple[bool, contract.Reply | None]:
        """``commit()``, then wait for the event's reply until ``deadline`` (event-loop time).

        Returns (new, reply). The callback path, in one call so the reply waiter can be
        registered *before* the event is queued: every acknowledgement processed after the event
        exists then reaches the waiter, and a new event (which nothing can have acknowledged
        before this commit) needs no read of its stored state. Only a repeat reads it, since it
        may have been acknowledged with a reply long ago. That saves a spool-thread round trip
        per new callback.
        """
        event_id = envelope["id"]
        future = self._replies.register(event_id)
        try:
            new = await self.commit(envelope)
            return new, await self._reply(event_id, future, deadline, read_stored=not new)
        finally:
            self._replies.forget(event_id, future)

    async def wait_reply(self, event_id: str, timeout_s: float) -> contract.Reply | None:
        """The reply of an event that may already be acknowledged (a late retry), or one that
        arrives within ``timeout_s``; None on timeout or an acknowledgement without reply.

        The waiter is registered before the stored state is read, so an ack landing in between
        still wakes it. A reply that arrives after the waiter gave up is counted as late.
        """
        deadline = self._loop.time() + max(timeout_s, 0.0)
        future = self._replies.register(event_id)
        try:
            return await self._reply(event_id, future, deadline, read_stored=True)
        finally:
            self._replies.forget(event_id, future)

    async def _reply(
        self, event_id: str, future: ReplyFuture, deadline: float, *, read_stored: bool
    ) -> contract.Reply | None:
        if future.done():
            return future.result()
        if self._closing or deadline <= self._loop.time():
            return None  # no budget left, or shutting down (the relay is gone, no reply can arrive)
        if not read_stored:
            return await self._replies.wait(future, deadline)
        try:
            async with asyncio.timeout_at(deadline):  # the read must fit in the budget too
                try:
                    stored = await self._run(partial(self._db.lookup, event_id))
                except SpoolUnavailable as exc:  # the ack can still arrive through memory
                    log.warning("spool reply lookup failed", extra={"reason": exc.detail})
                    stored = None
                if stored is not None and stored.acked:
                    return _reply_from(stored.reply)
                return await future
        except TimeoutError:
            return None

    # -- relaying -------------------------------------------------------------------------------

    @property
    def ready_version(self) -> int:
        """Bumped whenever events may have become ready; pass it to ``wait_ready``."""
        return self._ready_version

    async def wait_ready(self, since_version: int, timeout_s: float) -> bool:
        """Sleep until events may be ready (True) or ``timeout_s`` passes (False); no lost wake-ups."""
        if self._ready_version != since_version or self._closing:
            return True
        ready = self._ready
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                await ready.wait()
        except TimeoutError:
            return False
        return True

    def _signal_ready(self) -> None:
        self._ready_version += 1
        ready, self._ready = self._ready, asyncio.Event()
        ready.set()

    async def lease(self, max_events: int, lease_s: float) -> list[Leased]:
        """Up to ``max_events`` ready events, oldest first, not handed out again for ``lease_s``."""
        now = self._clock()
        rows = await self._run(partial(self._db.lease, max(1, max_events), now, now + lease_s))
        return [Leased(row.id, row.body, row.attempts) for row in rows]

    async def release(self, event_ids: Sequence[str], delay_s: float = 0.0) -> None:
        """Return leased events unacknowledged; they are ready again after ``delay_s``."""
        if not event_ids:
            return
        ready_at = self._clock() + delay_s if delay_s > 0 else 0.0
        await self._run(partial(self._db.release, list(event_ids), ready_at))
        if ready_at == 0.0:
            self._signal_ready()

    async def next_due_in(self) -> float | None:
        """Seconds until the earliest leased or delayed event becomes ready; None if none waits."""
        now = self._clock()
        due = await self._run(partial(self._db.next_due, now))
        return None if due is None else max(0.0, due - now)

    async def ack(self, results: Sequence[contract.Result]) -> int:
        """Acknowledge events (store their reply, wake waiters); return how many were newly acked."""
        if not results:
            return 0
        replies = {r["id"]: r["reply"] for r in results}
        payload = [(event_id, None if reply is None else _dumps(reply)) for event_id, reply in replies.items()]
        acked, oldest = await self._run(partial(self._db.ack, payload, self._clock()))
        self._depth -= len(acked)
        self._oldest = oldest
        for row in acked:
            self._replies.deliver(row.id, row.account, replies[row.id])
        return len(acked)

    # -- pruning --------------------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete events acknowledged longer than retention ago (ids kept as dedupe keys) and
        dedupe keys past their keep span; a chunk per transaction. Returns events deleted."""
        now = self._clock()
        acked_before = now - self._config.retention_s
        deleted = 0
        while True:
            chunk = await self._run(
                partial(self._db.prune_events, acked_before, self._config.dedupe_keep_s, now, PRUNE_CHUNK)
            )
            deleted += chunk
            if chunk < PRUNE_CHUNK:
                break
        while await self._run(partial(self._db.prune_keys, now, PRUNE_CHUNK)) == PRUNE_CHUNK:
            pass
        return deleted

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            try:
                deleted = await self.prune()
            except SpoolUnavailable as exc:
                log.warning("spool prune failed", extra={"reason": exc.detail})
                continue
            if deleted:
                log.info("spool pruned", extra={"events": deleted})

    # -- plumbing -------------------------------------------------------------------------------

    async def _run(self, work: Callable[[], T]) -> T:
        """Run one transaction on the spool thread; disk and SQLite errors become SpoolUnavailable."""
        if self._closed:
            raise SpoolUnavailable("spool is closed")
        try:
            return await self._loop.run_in_executor(self._executor, work)
        except (sqlite3.Error, OSError) as exc:
            raise SpoolUnavailable(f"spool I/O failed: {exc}") from exc
        except RuntimeError as exc:  # the executor was shut down under us
            raise SpoolUnavailable("spool is closed") from exc


def _load(config: SpoolConfig) -> tuple[SpoolDb, int, float | None]:
    """Open the file and count the backlog (on the spool thread); nothing leaks on failure."""
    db = SpoolDb.open(config.path)
    try:
        return db, db.depth(), db.oldest_unacked()
    except BaseException:
        db.close()
        raise


def _dumps(obj: Any) -> str:
    return contract.dump_json(obj).decode("utf-8")


def _reply_from(stored: str | None) -> contract.Reply | None:
    if stored is None:
        return None
    return contract.parse_reply(json.loads(stored))
