"""What only PostgreSQL has to prove: migrations under the advisory lock, the pool's bounds and
timeouts, a lost connection, and a URL that never leaks. Real server from tests/pg.py.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from sidecar.errors import StoreError, StoreUnavailable
from sidecar.store import open_store
from sidecar.store.migrations import MIGRATIONS, Migration
from sidecar.store.postgres_schema import migrate
from tests.pg import PgServer, free_port
from tests.sidecar.store.conftest import postgres_config


async def count_versions(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute("SELECT COUNT(*) FROM schema_version")
        row = await cursor.fetchone()
    return int(row[0]) if row else -1


async def test_open_two_stores_at_once_on_a_fresh_database_both_succeed_and_migrate_once(pg_url: str) -> None:
    opened = await asyncio.gather(*(open_store(postgres_config(pg_url)) for _ in range(2)), return_exceptions=True)
    stores = [s for s in opened if not isinstance(s, BaseException)]
    try:
        assert len(stores) == 2, opened
        assert [await s.schema_version() for s in stores] == [len(MIGRATIONS)] * 2
        assert await count_versions(pg_url) == len(MIGRATIONS)
    finally:
        for store in stores:
            await store.close()


async def test_open_store_again_applies_no_migration_twice(pg_url: str) -> None:
    await (await open_store(postgres_config(pg_url))).close()
    again = await open_store(postgres_config(pg_url))
    await again.close()
    assert await count_versions(pg_url) == len(MIGRATIONS)


async def test_migrate_failing_migration_rolls_back_and_is_retried_next_time(pg_url: str) -> None:
    broken = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE extra (x INTEGER)", "NOT SQL")))
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.SyntaxError):
            await migrate(conn, broken)
        cursor = await conn.execute("SELECT to_regclass('extra')")
        assert await cursor.fetchone() == (None,)
        fixed = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "fixed", ("CREATE TABLE extra (x INTEGER)",)))
        assert await migrate(conn, fixed) == len(MIGRATIONS) + 1


async def test_open_store_on_a_database_newer_than_the_code_is_refused(pg_url: str) -> None:
    await (await open_store(postgres_config(pg_url))).close()
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS) + 5,))
    with pytest.raises(StoreError, match=f"schema version {len(MIGRATIONS) + 5} is newer"):
        await open_store(postgres_config(pg_url))


async def test_open_store_on_a_closed_port_is_unavailable_without_the_password() -> None:
    url = f"postgresql://wx:hunter2-secret@127.0.0.1:{free_port()}/wx"
    with pytest.raises(StoreUnavailable, match="database unreachable") as caught:
        await open_store(postgres_config(url))
    assert "hunter2" not in str(caught.value)


async def test_store_repr_hides_the_url(pg_server: PgServer, pg_url: str) -> None:
    store = await open_store(postgres_config(pg_url))
    try:
        shown = repr(store)
        assert str(pg_server.port) not in shown and pg_url.rsplit("/", 1)[1] not in shown
    finally:
        await store.close()


async def test_pool_exhausted_call_waits_acquire_timeout_then_is_unavailable(pg_url: str) -> None:
    store = await open_store(postgres_config(pg_url, pool_min_size=1, pool_max_size=1, acquire_timeout_s=0.3))
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_only_connection() -> None:
        async with store.transaction():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_only_connection())
    try:
        await holding.wait()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.bindings.get("main", "alice"), timeout=5)
    finally:
        release.set()
        await holder
        await store.close()


async def test_statement_blocked_past_statement_timeout_is_cancelled_as_unavailable(pg_url: str) -> None:
    store = await open_store(postgres_config(pg_url, statement_timeout_s=0.3))
    await store.tokens.save("k", "t1", expires_at=9.0, fetched_at=1.0, expected_version=0)
    async with await psycopg.AsyncConnection.connect(pg_url) as other:  # a transaction elsewhere holds the row
        await other.execute("SELECT 1 FROM tokens WHERE key = 'k' FOR UPDATE")
        try:
            with pytest.raises(StoreUnavailable, match="statement timeout"):
                await asyncio.wait_for(
                    store.tokens.save("k", "t2", expires_at=9.0, fetched_at=2.0, expected_version=1), timeout=5
                )
        finally:
            await store.close()


async def test_connections_the_server_dropped_are_replaced_on_the_next_call(pg_server: PgServer, pg_url: str) -> None:
    store = await open_store(postgres_config(pg_url, pool_min_size=2))
    try:
        await store.ping()
        async with await psycopg.AsyncConnection.connect(pg_server.url(), autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
                (pg_url.rsplit("/", 1)[1],),
            )
        await store.ping()
        assert await store.bindings.list() == []
    finally:
        await store.close()
