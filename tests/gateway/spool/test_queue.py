"""The durable spool: group commit, dedupe, leases, acks, replies, pruning, restarts, failures."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import contract
from gateway.config import SpoolConfig
from gateway.errors import SpoolUnavailable
from gateway.metrics import GatewayMetrics
from gateway.spool.queue import Spool, SpoolStats

RETENTION_S = 3600
KEEP_S = 48 * 3600


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def envelope(n: int, account: str = "main") -> contract.Envelope:
    message = {"ToUserName": "gh_test", "FromUserName": "oUser", "MsgType": "text", "MsgId": str(n), "Content": "hi"}
    return contract.make_envelope(account, "mp", "safe", message, datetime(2026, 11, 28, tzinfo=UTC))


def rows_in(path: Path, where: str = "1") -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}").fetchone()[0])


def sample(metrics: GatewayMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


OpenSpool = Callable[..., Awaitable[Spool]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


@pytest.fixture
def config(tmp_path: Path) -> SpoolConfig:
    return SpoolConfig(path=tmp_path / "spool.sqlite3", retention_s=RETENTION_S, dedupe_keep_s=KEEP_S)


@pytest.fixture
async def open_spool(config: SpoolConfig, metrics: GatewayMetrics, clock: FakeClock) -> AsyncIterator[OpenSpool]:
    opened: list[Spool] = []

    async def _open(cfg: SpoolConfig = config) -> Spool:
        spool = await Spool.open(cfg, metrics, clock=clock)
        opened.append(spool)
        return spool

    yield _open
    for spool in opened:
        await spool.close()


async def test_spool_commit_new_event_returns_true_and_is_on_disk(open_spool: OpenSpool, config: SpoolConfig) -> None:
    spool = await open_spool()
    assert await spool.commit(envelope(1)) is True
    assert rows_in(config.path) == 1
    assert await spool.contains(envelope(1)["id"])
    assert not await spool.contains(envelope(2)["id"])


async def test_spool_enqueue_duplicate_is_noop(open_spool: OpenSpool, config: SpoolConfig) -> None:
    spool = await open_spool()
    assert await spool.commit(envelope(1)) is True
    assert await spool.commit(envelope(1)) is False
    assert rows_in(config.path) == 1
    assert spool.stats().depth == 1


async def test_spool_concurrent_repeats_of_one_event_spool_one_row(open_spool: OpenSpool, config: SpoolConfig) -> None:
    spool = await open_spool()
    outcomes = await asyncio.gather(*(spool.commit(envelope(7)) for _ in range(4)))
    assert sorted(outcomes) == [False, False, False, True]
    assert rows_in(config.path) == 1


async def test_spool_concurrent_commits_share_few_transactions(open_spool: OpenSpool, metrics: GatewayMetrics) -> None:
    spool = await open_spool()
    outcomes = await asyncio.gather(*(spool.commit(envelope(n)) for n in range(100)))
    assert all(outcomes)
    transactions = sample(metrics, "wxgw_spool_commit_batch_size_count")
    assert sample(metrics, "wxgw_spool_commit_batch_size_sum") == 100
    assert 1 <= transactions <= 5
    assert sample(metrics, "wxgw_spool_commit_seconds_count") == 100


async def test_spool_sequential_commits_each_get_their_own_transaction(
    open_spool: OpenSpool, metrics: GatewayMetrics
) -> None:
    spool = await open_spool()
    for n in range(3):
        await spool.commit(envelope(n))
    assert sample(metrics, "wxgw_spool_commit_batch_size_count") == 3


async def test_spool_unacked_events_survive_restart(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    for n in range(3):
        await spool.commit(envelope(n))
    await spool.ack([contract.Result(id=envelope(0)["id"], status="accepted", reply=None)])
    await spool.close()

    reopened = await open_spool()
    assert reopened.stats().depth == 2
    leased = await reopened.lease(10, 30)
    assert [json.loads(item.body) for item in leased] == [envelope(1), envelope(2)]


async def test_spool_leased_events_are_ready_again_after_restart(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    assert len(await spool.lease(10, 300)) == 1
    await spool.close()

    reopened = await open_spool()
    assert [item.id for item in await reopened.lease(10, 300)] == [envelope(1)["id"]]


async def test_spool_close_finishes_queued_commits(open_spool: OpenSpool, config: SpoolConfig) -> None:
    slow = SpoolConfig(path=config.path, commit_window_ms=50)
    spool = await open_spool(slow)
    commits = [asyncio.create_task(spool.commit(envelope(n))) for n in range(10)]
    await asyncio.sleep(0)
    await spool.close()
    assert all(await asyncio.gather(*commits))
    assert rows_in(config.path) == 10


async def test_spool_commit_after_close_raises_spool_unavailable(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.close()
    with pytest.raises(SpoolUnavailable):
        await spool.commit(envelope(1))
    with pytest.raises(SpoolUnavailable):
        await spool.lease(1, 30)


async def test_spool_lease_hands_out_oldest_first_up_to_max(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    for n in range(5):
        await spool.commit(envelope(n))
    first = await spool.lease(3, 30)
    second = await spool.lease(3, 30)
    assert [json.loads(item.body) for item in first] == [envelope(0), envelope(1), envelope(2)]
    assert [json.loads(item.body) for item in second] == [envelope(3), envelope(4)]
    assert all(item.attempts == 1 for item in first + second)


async def test_spool_lease_is_exclusive_until_it_expires(open_spool: OpenSpool, clock: FakeClock) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    assert len(await spool.lease(10, 30)) == 1
    clock.now += 29
    assert await spool.lease(10, 30) == []
    assert await spool.next_due_in() == pytest.approx(1.0)
    clock.now += 1
    again = await spool.lease(10, 30)
    assert [json.loads(item.body) for item in again] == [envelope(1)]
    assert again[0].attempts == 2


async def test_spool_release_with_delay_hides_event_until_due(open_spool: OpenSpool, clock: FakeClock) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    leased = await spool.lease(10, 30)
    await spool.release([item.id for item in leased], delay_s=5)
    assert await spool.lease(10, 30) == []
    clock.now += 5
    assert len(await spool.lease(10, 30)) == 1


async def test_spool_release_without_delay_is_ready_at_once(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    leased = await spool.lease(10, 30)
    await spool.release([leased[0].id])
    assert len(await spool.lease(10, 30)) == 1


async def test_spool_acked_event_is_never_leased_again(open_spool: OpenSpool, clock: FakeClock) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    await spool.lease(10, 30)
    assert await spool.ack([contract.Result(id=envelope(1)["id"], status="accepted", reply=None)]) == 1
    clock.now += 60
    assert await spool.lease(10, 30) == []
    assert spool.stats().depth == 0


async def test_spool_ack_twice_counts_once(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    result = contract.Result(id=envelope(1)["id"], status="accepted", reply=None)
    assert await spool.ack([result]) == 1
    assert await spool.ack([result]) == 0
    assert await spool.ack([contract.Result(id=envelope(2)["id"], status="accepted", reply=None)]) == 0


async def test_spool_commit_wakes_ready_waiter(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    version = spool.ready_version
    waiter = asyncio.create_task(spool.wait_ready(version, 10))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await spool.commit(envelope(1))
    assert await asyncio.wait_for(waiter, 1) is True


async def test_spool_wait_ready_times_out_without_events(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    assert await spool.wait_ready(spool.ready_version, 0.01) is False


async def test_spool_ack_reply_reaches_waiter(open_spool: OpenSpool, metrics: GatewayMetrics) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    waiter = asyncio.create_task(spool.wait_reply(envelope(1)["id"], 5))
    await asyncio.sleep(0.01)
    reply = contract.text_reply("bound")
    await spool.ack([contract.Result(id=envelope(1)["id"], status="accepted", reply=reply)])
    assert await asyncio.wait_for(waiter, 1) == reply
    assert sample(metrics, "wxgw_passive_replies_total", {"account": "main", "outcome": "late"}) == 0


async def test_spool_wait_reply_after_ack_returns_stored_reply(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    reply = contract.text_reply("你好 <b>&")
    await spool.ack([contract.Result(id=envelope(1)["id"], status="duplicate", reply=reply)])
    assert await spool.wait_reply(envelope(1)["id"], 0.5) == reply


async def test_spool_wait_reply_times_out_with_none(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    assert await spool.wait_reply(envelope(1)["id"], 0.02) is None


async def test_spool_ack_without_reply_releases_waiter_with_none(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    waiter = asyncio.create_task(spool.wait_reply(envelope(1)["id"], 30))
    await asyncio.sleep(0.01)
    await spool.ack([contract.Result(id=envelope(1)["id"], status="accepted", reply=None)])
    assert await asyncio.wait_for(waiter, 1) is None


async def test_spool_reply_after_waiter_gave_up_counts_late(open_spool: OpenSpool, metrics: GatewayMetrics) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1, account="corp"))
    assert await spool.wait_reply(envelope(1, account="corp")["id"], 0.01) is None
    reply = contract.text_reply("too late")
    await spool.ack([contract.Result(id=envelope(1, account="corp")["id"], status="accepted", reply=reply)])
    assert sample(metrics, "wxgw_passive_replies_total", {"account": "corp", "outcome": "late"}) == 1


async def test_spool_prune_deletes_acked_after_retention_but_keeps_dedupe(
    open_spool: OpenSpool, clock: FakeClock, config: SpoolConfig
) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    await spool.ack([contract.Result(id=envelope(1)["id"], status="accepted", reply=None)])
    clock.now += RETENTION_S - 1
    assert await spool.prune() == 0
    clock.now += 1
    assert await spool.prune() == 1
    assert rows_in(config.path) == 0
    assert await spool.contains(envelope(1)["id"])
    assert await spool.commit(envelope(1)) is False
    assert rows_in(config.path) == 0


async def test_spool_prune_forgets_dedupe_keys_after_keep_span(
    open_spool: OpenSpool, clock: FakeClock
) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    await spool.ack([contract.Result(id=envelope(1)["id"], status="accepted", reply=None)])
    clock.now += RETENTION_S
    await spool.prune()
    clock.now += KEEP_S - RETENTION_S
    await spool.prune()
    assert not await spool.contains(envelope(1)["id"])
    assert await spool.commit(envelope(1)) is True


async def test_spool_prune_keeps_unacknowledged_events(
    open_spool: OpenSpool, clock: FakeClock, config: SpoolConfig
) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    clock.now += KEEP_S * 10
    assert await spool.prune() == 0
    assert rows_in(config.path) == 1
    assert len(await spool.lease(10, 30)) == 1


async def test_spool_stats_report_depth_and_oldest_age(open_spool: OpenSpool, clock: FakeClock) -> None:
    spool = await open_spool()
    assert spool.stats().oldest_unacked_age_s == 0
    await spool.commit(envelope(1))
    clock.now += 10
    await spool.commit(envelope(2))
    clock.now += 5
    assert spool.stats().depth == 2
    assert spool.stats().oldest_unacked_age_s == pytest.approx(15)
    await spool.ack([contract.Result(id=envelope(1)["id"], status="accepted", reply=None)])
    assert spool.stats() == SpoolStats(depth=1, oldest_unacked_age_s=5.0)


async def test_spool_open_unusable_path_raises_spool_unavailable(
    tmp_path: Path, metrics: GatewayMetrics
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(SpoolUnavailable, match="cannot open spool"):
        await Spool.open(SpoolConfig(path=blocker / "spool.sqlite3"), metrics)


async def test_spool_open_foreign_schema_version_raises_spool_unavailable(
    config: SpoolConfig, metrics: GatewayMetrics
) -> None:
    with sqlite3.connect(config.path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SpoolUnavailable, match="schema version 99"):
        await Spool.open(config, metrics)


async def test_spool_broken_database_raises_spool_unavailable_and_not_writable(
    open_spool: OpenSpool, config: SpoolConfig
) -> None:
    spool = await open_spool()
    assert await spool.writable() is True
    with sqlite3.connect(config.path) as conn:
        conn.execute("DROP TABLE events")
        conn.execute("DROP TABLE meta")
    with pytest.raises(SpoolUnavailable, match="no such table"):
        await spool.commit(envelope(1))
    assert await spool.writable() is False


async def test_spool_writable_false_after_close(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.close()
    assert await spool.writable() is False


async def test_spool_close_releases_reply_waiters_at_once(open_spool: OpenSpool) -> None:
    spool = await open_spool()
    await spool.commit(envelope(1))
    waiter = asyncio.create_task(spool.wait_reply(envelope(1)["id"], 30))
    await asyncio.sleep(0.01)
    await spool.close()
    assert await asyncio.wait_for(waiter, 1) is None
    assert await spool.wait_reply(envelope(1)["id"], 30) is None
