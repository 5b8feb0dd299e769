"""The spool as the callback path and the relays use it: commit with the reply wait, relay bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import contract
from gateway.config import SpoolConfig
from gateway.metrics import GatewayMetrics
from gateway.spool.db import Lookup, NewRow, SpoolDb
from gateway.spool.queue import Spool
from tests.gateway.spool.test_queue import envelope, sample


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


@pytest.fixture
async def spool(tmp_path: Path, metrics: GatewayMetrics) -> AsyncIterator[Spool]:
    opened = await Spool.open(SpoolConfig(path=tmp_path / "spool.sqlite3"), metrics)
    yield opened
    await opened.close()


def deadline_in(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def accepted(n: int, reply: contract.Reply | None = None) -> contract.Result:
    return contract.Result(id=envelope(n)["id"], status="accepted", reply=reply)


class CountingLookups:
    """Wraps the spool's stored-state read to count it (the read costs a spool-thread round trip)."""

    def __init__(self, spool: Spool) -> None:
        self.calls = 0
        self._lookup = spool._db.lookup
        spool._db.lookup = self  # type: ignore[method-assign]

    def __call__(self, event_id: str) -> Lookup | None:
        self.calls += 1
        return self._lookup(event_id)


# --- commit_and_wait_reply -----------------------------------------------------------------


async def test_commit_and_wait_reply_new_event_gets_the_reply_of_its_ack(spool: Spool) -> None:
    waiting = asyncio.create_task(spool.commit_and_wait_reply(envelope(1), deadline_in(5)))
    while not await spool.contains(envelope(1)["id"]):
        await asyncio.sleep(0.005)
    assert len(await spool.lease(10, 30)) == 1  # as a relay would, before the sidecar's ack
    await spool.ack([accepted(1, contract.text_reply("bound"))])
    assert await asyncio.wait_for(waiting, 1) == (True, contract.text_reply("bound"))


async def test_commit_and_wait_reply_new_event_reads_no_stored_state(spool: Spool) -> None:
    lookups = CountingLookups(spool)
    assert await spool.commit_and_wait_reply(envelope(1), deadline_in(0.02)) == (True, None)
    assert lookups.calls == 0


async def test_commit_and_wait_reply_repeat_answers_with_the_stored_reply(spool: Spool) -> None:
    await spool.commit(envelope(1))
    await spool.ack([accepted(1, contract.text_reply("你好"))])
    lookups = CountingLookups(spool)
    assert await spool.commit_and_wait_reply(envelope(1), deadline_in(5)) == (False, contract.text_reply("你好"))
    assert lookups.calls == 1


async def test_commit_and_wait_reply_ack_before_any_lease_still_reaches_the_waiter(spool: Spool) -> None:
    """An ack naming the id as soon as the row exists (no lease: a sidecar that guessed the id)."""
    waiting = asyncio.create_task(spool.commit_and_wait_reply(envelope(1), deadline_in(5)))
    while not await spool.contains(envelope(1)["id"]):
        pass  # no sleep: ack in the very next spool-thread transaction after the insert
    await spool.ack([accepted(1, contract.text_reply("early"))])
    assert await asyncio.wait_for(waiting, 1) == (True, contract.text_reply("early"))


async def test_commit_and_wait_reply_spent_budget_answers_at_once_after_the_commit(spool: Spool) -> None:
    assert await spool.commit_and_wait_reply(envelope(1), deadline_in(-1)) == (True, None)
    assert spool.stats().depth == 1


async def test_commit_and_wait_reply_timeout_leaves_no_waiter_and_a_late_reply_is_counted(
    spool: Spool, metrics: GatewayMetrics
) -> None:
    assert await spool.commit_and_wait_reply(envelope(1), deadline_in(0.02)) == (True, None)
    await spool.ack([accepted(1, contract.text_reply("too late"))])
    assert sample(metrics, "wxgw_passive_replies_total", {"account": "main", "outcome": "late"}) == 1


async def test_commit_and_wait_reply_closing_spool_answers_none(spool: Spool) -> None:
    waiting = asyncio.create_task(spool.commit_and_wait_reply(envelope(1), deadline_in(30)))
    while not await spool.contains(envelope(1)["id"]):
        await asyncio.sleep(0.005)
    await spool.close()
    assert await asyncio.wait_for(waiting, 1) == (True, None)


# --- relay bodies --------------------------------------------------------------------------


async def test_lease_hands_out_the_stored_json_and_the_id(spool: Spool) -> None:
    await spool.commit(envelope(1))
    [item] = await spool.lease(10, 30)
    assert (item.id, item.attempts) == (envelope(1)["id"], 1)
    assert item.body == contract.dump_json(envelope(1)).decode("utf-8")


async def test_events_body_of_leased_events_is_byte_for_byte_dump_json_of_the_envelopes(spool: Spool) -> None:
    special = envelope(2)
    special["message"]["Content"] = '你好 "quoted" \\ </xml> \u2028 😀'
    for event in (envelope(1), special):
        await spool.commit(event)
    bodies = [item.body for item in await spool.lease(10, 30)]
    assert contract.events_body(bodies) == contract.dump_json({"events": [envelope(1), special]})
    assert contract.events_body(bodies, lease_seconds=30) == contract.dump_json(
        {"events": [envelope(1), special], "lease_seconds": 30}
    )


async def test_ack_of_more_than_a_chunk_with_repeats_and_replies_acks_each_event_once(spool: Spool) -> None:
    await asyncio.gather(*(spool.commit(envelope(n)) for n in range(250)))
    results = [accepted(n) for n in range(240)] + [accepted(7), accepted(n=245, reply=contract.text_reply("hi"))]
    assert await spool.ack(results) == 241
    assert spool.stats().depth == 9
    assert await spool.wait_reply(envelope(245)["id"], 0.5) == contract.text_reply("hi")
    assert await spool.ack([accepted(n) for n in range(250)]) == 9


async def test_lease_hands_out_oldest_first_and_counts_attempts(spool: Spool) -> None:
    for n in range(5):
        await spool.commit(envelope(n))
    first = await spool.lease(3, 30)
    await spool.release([item.id for item in first])
    again = await spool.lease(10, 30)
    assert [item.id for item in again] == [envelope(n)["id"] for n in range(5)]
    assert [item.attempts for item in again] == [2, 2, 2, 1, 1]


def test_insert_with_repeats_and_a_known_id_flags_only_first_new_occurrences(tmp_path: Path) -> None:
    db = SpoolDb.open(tmp_path / "spool.sqlite3")
    try:
        def row(n: int) -> NewRow:
            return NewRow(envelope(n)["id"], "main", contract.dump_json(envelope(n)).decode(), 0.0)

        assert db.insert([row(0)]) == [True]
        rows = [row(n) for n in range(300)] + [row(5), row(299)]
        assert db.insert(rows) == [False] + [True] * 299 + [False, False]
        assert db.depth() == 300
    finally:
        db.close()
