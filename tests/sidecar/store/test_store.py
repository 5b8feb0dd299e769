"""Each repository's contract, on every backend (the ``store`` fixture: SQLite and PostgreSQL).

SQLite's own migration mechanics (a file in tmp_path, WAL) are tested here too; PostgreSQL's
(advisory lock, --check) are in test_postgres.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest

from contract import make_envelope, text_reply
from sidecar.config import load_config
from sidecar.errors import NestedTransaction, UserAlreadyBound, WxIdTaken
from sidecar.housekeeping import purge_once
from sidecar.store import AuditRecord, Binding, BindingAttempt, BindingLink, Store, open_sqlite_store
from sidecar.store.migrations import MIGRATIONS, Migration, check_order
from tests.sidecar.helpers import write_config


def envelope(openid: str = "oUser1", event: str = "subscribe") -> dict:  # type: ignore[type-arg]
    message = {"FromUserName": openid, "CreateTime": "1700000000", "MsgType": "event", "Event": event}
    return dict(make_envelope("main", "mp", "safe", message, datetime(2026, 1, 1, tzinfo=UTC)))


# migrations -------------------------------------------------------------------------------------


async def test_open_store_applies_every_migration(store: Store) -> None:
    assert await store.schema_version() == len(MIGRATIONS)


async def test_open_sqlite_store_twice_applies_migrations_once(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    first = await open_sqlite_store(path)
    await first.close()
    second = await open_sqlite_store(path)
    assert await second.schema_version() == len(MIGRATIONS)
    await second.close()
    async with aiosqlite.connect(path) as conn, conn.execute("SELECT COUNT(*) FROM schema_version") as cur:
        assert (await cur.fetchone()) == (len(MIGRATIONS),)


async def test_open_sqlite_store_uses_wal_journal(tmp_path: Path) -> None:
    await (await open_sqlite_store(tmp_path / "w.sqlite3")).close()
    async with aiosqlite.connect(tmp_path / "w.sqlite3") as conn:
        async with conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone()) == ("wal",)


async def test_sqlite_failed_migration_rolls_back_and_is_retried_next_time(tmp_path: Path) -> None:
    from sidecar.store.sqlite import migrate

    broken = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE extra (x)", "NOT SQL")))
    async with aiosqlite.connect(tmp_path / "m.sqlite3", isolation_level=None) as conn:
        with pytest.raises(aiosqlite.OperationalError):
            await migrate(conn, broken)
        async with conn.execute("SELECT name FROM sqlite_master WHERE name = 'extra'") as cur:
            assert await cur.fetchone() is None
        fixed = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "fixed", ("CREATE TABLE extra (x)",)))
        assert await migrate(conn, fixed) == len(MIGRATIONS) + 1


def test_check_order_refuses_gaps() -> None:
    with pytest.raises(RuntimeError):
        check_order((Migration(1, "a", ()), Migration(3, "c", ())))


# tokens -----------------------------------------------------------------------------------------


async def test_token_save_first_write_needs_version_zero(store: Store) -> None:
    saved = await store.tokens.save("mp:wx1", "tok-A", expires_at=100.0, fetched_at=1.0, expected_version=0)
    assert saved is not None and saved.version == 1
    record = await store.tokens.get("mp:wx1")
    assert record is not None and record.token.reveal() == "tok-A" and record.version == 1


async def test_token_save_with_stale_version_loses_to_other_writer(store: Store) -> None:
    await store.tokens.save("k", "tok-A", expires_at=100.0, fetched_at=1.0, expected_version=0)
    assert await store.tokens.save("k", "tok-B", expires_at=200.0, fetched_at=2.0, expected_version=1) is not None
    assert await store.tokens.save("k", "tok-C", expires_at=300.0, fetched_at=3.0, expected_version=1) is None
    record = await store.tokens.get("k")
    assert record is not None and record.token.reveal() == "tok-B"


async def test_token_concurrent_first_writes_only_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.tokens.save("k", f"t{i}", expires_at=9.0, fetched_at=1.0, expected_version=0) for i in range(5))
    )
    assert sum(r is not None for r in results) == 1


async def test_token_invalidate_only_if_still_the_failed_token(store: Store) -> None:
    await store.tokens.save("k", "old", expires_at=100.0, fetched_at=1.0, expected_version=0)
    await store.tokens.save("k", "new", expires_at=200.0, fetched_at=2.0, expected_version=1)
    assert await store.tokens.invalidate("k", "old") is False
    record = await store.tokens.get("k")
    assert record is not None and record.usable(now=150.0)
    assert await store.tokens.invalidate("k", "new") is True
    record = await store.tokens.get("k")
    assert record is not None and not record.usable(now=150.0)


async def test_token_unix_times_round_trip_to_the_microsecond(store: Store) -> None:
    await store.tokens.save("k", "t", expires_at=1767225600.123456, fetched_at=1767218400.5, expected_version=0)
    record = await store.tokens.get("k")
    assert record is not None and (record.expires_at, record.fetched_at) == (1767225600.123456, 1767218400.5)


async def test_token_repr_masks_the_token(store: Store) -> None:
    await store.tokens.save("k", "very-secret-token", expires_at=1.0, fetched_at=1.0, expected_version=0)
    assert "very-secret-token" not in repr(await store.tokens.get("k"))


async def test_token_refresh_lease_is_exclusive_until_it_expires(store: Store) -> None:
    assert await store.tokens.acquire_refresh("k", "replica-a", now=0.0, ttl_s=10.0)
    assert not await store.tokens.acquire_refresh("k", "replica-b", now=5.0, ttl_s=10.0)
    assert await store.tokens.acquire_refresh("k", "replica-b", now=10.5, ttl_s=10.0)


async def test_token_refresh_lease_release_lets_others_take_it(store: Store) -> None:
    assert await store.tokens.acquire_refresh("k", "a", now=0.0, ttl_s=10.0)
    await store.tokens.release_refresh("k", "a")
    assert await store.tokens.acquire_refresh("k", "b", now=1.0, ttl_s=10.0)


# inbox ------------------------------------------------------------------------------------------


async def test_inbox_add_same_event_twice_is_duplicate(store: Store) -> None:
    event = envelope()
    assert await store.inbox.add(event, received_at=1.0) is True  # type: ignore[arg-type]
    assert await store.inbox.add(event, received_at=2.0) is False  # type: ignore[arg-type]


async def test_inbox_complete_keeps_reply_for_duplicates(store: Store) -> None:
    event = envelope()
    await store.inbox.add(event, received_at=1.0)  # type: ignore[arg-type]
    await store.inbox.complete(event["id"], reply=text_reply("绑定成功"), processed_at=2.0)
    record = await store.inbox.get(event["id"])
    assert record is not None
    assert record.reply == {"type": "text", "content": "绑定成功"}
    assert record.envelope["message"]["Event"] == "subscribe"
    assert record.processed_at == 2.0


async def test_inbox_purge_drops_only_old_processed_events(store: Store) -> None:
    old, fresh = envelope("o1"), envelope("o2")
    await store.inbox.add(old, received_at=1.0)  # type: ignore[arg-type]
    await store.inbox.add(fresh, received_at=1.0)  # type: ignore[arg-type]
    await store.inbox.complete(old["id"], reply=None, processed_at=1.5)
    assert await store.inbox.purge(before=10.0) == 1
    assert await store.inbox.get(fresh["id"]) is not None


# transactions -----------------------------------------------------------------------------------


async def test_transaction_rolls_back_every_effect_on_error(store: Store) -> None:
    event = envelope()
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.inbox.add(event, received_at=1.0)  # type: ignore[arg-type]
            await tx.bindings.bind("main", "alice", "oUser1", now=1.0)
            raise RuntimeError("crash before commit")
    assert await store.inbox.get(event["id"]) is None
    assert await store.bindings.get("main", "alice") is None


async def test_transaction_commits_every_effect_together(store: Store) -> None:
    event = envelope()
    async with store.transaction() as tx:
        await tx.inbox.add(event, received_at=1.0)  # type: ignore[arg-type]
        await tx.bindings.bind("main", "alice", "oUser1", now=1.0)
        await tx.inbox.complete(event["id"], reply=None, processed_at=1.0)
    assert (await store.inbox.get(event["id"])) is not None
    assert (await store.bindings.get("main", "alice")) is not None


async def test_store_call_inside_own_transaction_raises_instead_of_deadlocking(store: Store) -> None:
    with pytest.raises(NestedTransaction):
        async with store.transaction():
            await store.bindings.get("main", "alice")


async def test_concurrent_transactions_all_commit(store: Store) -> None:
    async def bump(i: int) -> None:
        async with store.transaction() as tx:
            await tx.audit.record(AuditRecord(f"r{i}", float(i), "app", "main", [], "ok"))
            await asyncio.sleep(0)

    await asyncio.gather(*(bump(i) for i in range(20)))
    assert len(await store.audit.list(limit=100)) == 20


# bindings ---------------------------------------------------------------------------------------


async def test_bind_then_lookup_both_ways(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=5.0)
    assert (await store.bindings.get("main", "alice")) == Binding("main", "alice", "oA", True, 5.0, 5.0)
    found = await store.bindings.by_wx_id("main", "oA")
    assert found is not None and found.username == "alice"


async def test_bind_user_twice_raises_user_already_bound(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    with pytest.raises(UserAlreadyBound):
        await store.bindings.bind("main", "alice", "oB", now=2.0)


async def test_bind_taken_wx_id_raises_wx_id_taken(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    with pytest.raises(WxIdTaken):
        await store.bindings.bind("main", "bob", "oA", now=2.0)


async def test_bind_same_ids_on_another_account_is_independent(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    await store.bindings.bind("other", "alice", "oA", now=1.0)
    assert len(await store.bindings.list()) == 2


async def test_set_active_by_wx_id_marks_inactive_and_bind_reactivates(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    assert await store.bindings.set_active_by_wx_id("main", "oA", False, now=2.0) is True
    inactive = await store.bindings.get("main", "alice")
    assert inactive is not None and inactive.active is False and inactive.updated_at == 2.0
    again = await store.bindings.bind("main", "alice", "oA", now=3.0)
    assert again.active is True and again.bound_at == 1.0


async def test_set_active_by_unknown_wx_id_returns_false(store: Store) -> None:
    assert await store.bindings.set_active_by_wx_id("main", "nobody", False, now=1.0) is False


async def test_unbind_frees_both_user_and_wx_id(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    assert await store.bindings.unbind("main", "alice") is True
    await store.bindings.bind("main", "bob", "oA", now=2.0)
    assert await store.bindings.unbind("main", "alice") is False


async def test_get_many_returns_only_bound_users(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    await store.bindings.bind("main", "bob", "oB", now=1.0)
    found = await store.bindings.get_many("main", ["alice", "bob", "carol"])
    assert sorted(found) == ["alice", "bob"]


async def test_import_rows_skips_conflicts_and_reports_them(store: Store) -> None:
    await store.bindings.bind("main", "alice", "oA", now=1.0)
    result = await store.bindings.import_rows(
        [Binding("main", "bob", "oB"), Binding("main", "carol", "oA"), Binding("main", "alice", "oZ")], now=9.0
    )
    assert result.imported == 1
    assert [name for name, _ in result.skipped] == ["carol", "alice"]
    bob = await store.bindings.get("main", "bob")
    assert bob is not None and bob.bound_at == 9.0


async def test_list_pages_by_account(store: Store) -> None:
    for i in range(5):
        await store.bindings.bind("main", f"u{i}", f"o{i}", now=1.0)
    page = await store.bindings.list("main", limit=2, offset=2)
    assert [b.username for b in page] == ["u2", "u3"]


# binding sessions and links ---------------------------------------------------------------------


def session(sid: str = "s1", scene: str = "bind_abc") -> BindingAttempt:
    return BindingAttempt(sid, "main", "alice", "mp", scene, created_at=1.0, expires_at=100.0)


async def test_session_create_and_find_by_scene(store: Store) -> None:
    await store.binding_attempts.create(session())
    found = await store.binding_attempts.by_scene("main", "bind_abc")
    assert found == session()


async def test_session_finish_happens_once(store: Store) -> None:
    await store.binding_attempts.create(session())
    assert await store.binding_attempts.finish("s1", status="bound", now=2.0, wx_id="oA", message="绑定成功")
    assert not await store.binding_attempts.finish("s1", status="failed", now=3.0, message="late")
    found = await store.binding_attempts.get("s1")
    assert found is not None and (found.status, found.wx_id, found.finished_at) == ("bound", "oA", 2.0)


async def test_session_finish_after_expiry_is_refused(store: Store) -> None:
    await store.binding_attempts.create(session())
    assert not await store.binding_attempts.finish("s1", status="bound", now=100.0, wx_id="oA")


async def test_session_latest_for_user_is_the_newest(store: Store) -> None:
    await store.binding_attempts.create(session("s1", "a"))
    await store.binding_attempts.create(
        BindingAttempt("s2", "main", "alice", "mp", "b", created_at=5.0, expires_at=100.0)
    )
    latest = await store.binding_attempts.latest_for_user("main", "alice")
    assert latest is not None and latest.id == "s2"


async def test_session_latest_for_user_of_two_in_one_instant_is_the_later_one(store: Store) -> None:
    for sid in ("s1", "s2", "s0"):
        await store.binding_attempts.create(BindingAttempt(sid, "main", "alice", "mp", sid, 5.0, 100.0))
    latest = await store.binding_attempts.latest_for_user("main", "alice")
    assert latest is not None and latest.id == "s0"


async def test_link_consume_works_once(store: Store) -> None:
    await store.binding_links.create(BindingLink("h1", "alice", "main", created_at=1.0, expires_at=100.0))
    link = await store.binding_links.consume("h1", now=2.0)
    assert link is not None and link.username == "alice" and link.used_at == 2.0
    assert await store.binding_links.consume("h1", now=3.0) is None


async def test_link_consume_after_expiry_fails(store: Store) -> None:
    await store.binding_links.create(BindingLink("h1", "alice", "main", created_at=1.0, expires_at=100.0))
    assert await store.binding_links.consume("h1", now=100.0) is None


# audit ------------------------------------------------------------------------------------------


async def test_audit_record_round_trips_and_filters(store: Store) -> None:
    entry = AuditRecord("rid1", 1.0, "bk_paas", "main", ["oA", "oB"], "partial", 43004, "m1", {"failed": ["oB"]})
    await store.audit.record(entry)
    await store.audit.record(AuditRecord("rid2", 2.0, "other", "main", [], "ok"))
    assert await store.audit.list(app_code="bk_paas") == [entry]
    assert [r.request_id for r in await store.audit.list()] == ["rid2", "rid1"]
    assert await store.audit.purge(before=1.5) == 1


# housekeeping -----------------------------------------------------------------------------------


async def test_purge_once_drops_old_rows_and_keeps_recent_ones(store: Store, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    day = 24 * 3600.0
    now = 100 * day
    old, recent = envelope("o1"), envelope("o2")
    await store.inbox.add(old, received_at=now - 8 * day)  # type: ignore[arg-type]
    await store.inbox.complete(old["id"], reply=None, processed_at=now - 8 * day)
    await store.inbox.add(recent, received_at=now - day)  # type: ignore[arg-type]
    await store.inbox.complete(recent["id"], reply=None, processed_at=now - day)
    await store.audit.record(AuditRecord("r-old", now - 91 * day, "app", "main", [], "ok"))
    await store.audit.record(AuditRecord("r-new", now - day, "app", "main", [], "ok"))
    await store.binding_links.create(BindingLink("h-old", "a", "main", created_at=0.0, expires_at=now - 2 * day))
    await store.binding_links.create(BindingLink("h-new", "a", "main", created_at=0.0, expires_at=now - 60))
    removed = await purge_once(store, config, now)
    assert removed == {"inbox": 1, "binding_sessions": 0, "binding_links": 1, "audit": 1}
    assert await store.inbox.get(recent["id"]) is not None
    assert [r.request_id for r in await store.audit.list()] == ["r-new"]
