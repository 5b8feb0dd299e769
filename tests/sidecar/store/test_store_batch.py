"""Savepoints inside a store transaction, and the inbox's batch calls, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contract import Envelope, make_envelope, text_reply
from sidecar.errors import StoreUnavailable
from sidecar.store import InboxCompletion, Store
from tests.sidecar.store.conftest import EndTransaction


def envelope(n: int) -> Envelope:
    message = {"FromUserName": f"oUser{n:04d}", "CreateTime": "1700000000", "MsgType": "event", "Event": "CLICK"}
    return make_envelope("main", "mp", "safe", message, datetime(2026, 1, 1, tzinfo=UTC))


class Boom(Exception):
    pass


# savepoints -------------------------------------------------------------------------------------


async def test_savepoint_left_with_an_error_undoes_only_its_own_effects(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.bindings.bind("main", "alice", "oAlice", now=1.0)
        with pytest.raises(Boom):
            async with tx.savepoint() as inner:
                await inner.bindings.bind("main", "bob", "oBob", now=1.0)
                raise Boom
        await tx.bindings.bind("main", "carol", "oCarol", now=1.0)
    assert await store.bindings.get("main", "alice") is not None
    assert await store.bindings.get("main", "bob") is None
    assert await store.bindings.get("main", "carol") is not None


async def test_savepoint_left_normally_commits_with_the_transaction(store: Store) -> None:
    async with store.transaction() as tx, tx.savepoint() as inner:
        await inner.bindings.bind("main", "bob", "oBob", now=1.0)
    assert await store.bindings.get("main", "bob") is not None


async def test_savepoint_effects_roll_back_with_their_transaction(store: Store) -> None:
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            async with tx.savepoint() as inner:
                await inner.bindings.bind("main", "bob", "oBob", now=1.0)
            raise Boom
    assert await store.bindings.get("main", "bob") is None


async def test_nested_savepoint_rollback_keeps_the_outer_savepoints_work(store: Store) -> None:
    async with store.transaction() as tx, tx.savepoint() as outer:
        await outer.bindings.bind("main", "alice", "oAlice", now=1.0)
        with pytest.raises(Boom):
            async with outer.savepoint() as inner:
                await inner.bindings.bind("main", "bob", "oBob", now=1.0)
                raise Boom
    assert await store.bindings.get("main", "alice") is not None
    assert await store.bindings.get("main", "bob") is None


async def test_savepoint_after_a_failed_statement_lets_the_transaction_go_on(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oAlice", now=1.0)
    async with store.transaction() as tx:
        with pytest.raises(Exception, match="already bound"):
            async with tx.savepoint() as inner:
                await inner.bindings.bind("main", "mallory", "oAlice", now=1.0)  # WxIdTaken
        await tx.bindings.bind("main", "bob", "oBob", now=1.0)
    assert await store.bindings.get("main", "bob") is not None
    assert await store.bindings.get("main", "mallory") is None


async def test_work_after_the_database_ended_the_transaction_raises_and_commits_nothing(
    store: Store, end_transaction: EndTransaction
) -> None:
    # Carrying on after the database ended the transaction would autocommit piecemeal.
    with pytest.raises(StoreUnavailable):
        async with store.transaction() as tx:
            await tx.bindings.bind("main", "alice", "oAlice", now=1.0)
            await end_transaction(tx)
            await tx.bindings.bind("main", "bob", "oBob", now=1.0)
    assert await store.bindings.list() == []


async def test_leaving_a_savepoint_after_the_database_ended_the_transaction_raises(
    store: Store, end_transaction: EndTransaction
) -> None:
    with pytest.raises(StoreUnavailable):
        async with store.transaction() as tx, tx.savepoint():
            await tx.bindings.bind("main", "alice", "oAlice", now=1.0)
            await end_transaction(tx)
    assert await store.bindings.list() == []


async def test_driver_error_in_a_transaction_reaches_the_caller_as_store_unavailable(store: Store) -> None:
    async with store.transaction() as tx:
        with pytest.raises(StoreUnavailable):
            await tx.bindings.get("main", object())  # type: ignore[arg-type]
        await tx.bindings.bind("main", "bob", "oBob", now=1.0)
    assert await store.bindings.get("main", "bob") is not None


# the inbox's batch calls ------------------------------------------------------------------------


async def test_inbox_add_many_returns_only_the_ids_it_inserted(store: Store) -> None:
    old, new = envelope(1), envelope(2)
    await store.inbox.add(old, received_at=1.0)
    inserted = await store.inbox.add_many([old, new, new], received_at=2.0)
    assert inserted == {new["id"]}
    record = await store.inbox.get(new["id"])
    assert record is not None and record.received_at == 2.0 and record.envelope == new


async def test_inbox_add_many_of_more_than_one_statement_inserts_all(store: Store) -> None:
    batch = [envelope(n) for n in range(250)]
    assert await store.inbox.add_many(batch, received_at=1.0) == {e["id"] for e in batch}
    assert len(await store.inbox.get_many(e["id"] for e in batch)) == 250


async def test_inbox_get_many_returns_the_known_ids_only(store: Store) -> None:
    known, unknown = envelope(1), envelope(2)
    await store.inbox.add(known, received_at=1.0)
    found = await store.inbox.get_many([known["id"], unknown["id"], known["id"]])
    assert list(found) == [known["id"]]


async def test_inbox_complete_many_records_replies_and_errors(store: Store) -> None:
    ok, broken = envelope(1), envelope(2)
    await store.inbox.add_many([ok, broken], received_at=1.0)
    await store.inbox.complete_many(
        [InboxCompletion(ok["id"], 2.0, reply=text_reply("好")), InboxCompletion(broken["id"], 2.0, error="KeyError")]
    )
    records = await store.inbox.get_many([ok["id"], broken["id"]])
    assert records[ok["id"]].reply == text_reply("好") and records[ok["id"]].processed_at == 2.0
    assert records[broken["id"]].reply is None and records[broken["id"]].error == "KeyError"
