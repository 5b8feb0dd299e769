"""One conformance suite, every backend: the ``store`` fixture runs each test on SQLite and PostgreSQL.

SQLite lives in tmp_path; PostgreSQL is the session's real server (tests/pg.py), one fresh
database per test. Nothing is mocked: a case that passes here holds on both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from common.config import Secret
from sidecar.config import StoreConfig
from sidecar.store import SqliteStore, Store, Transaction, open_store
from tests.pg import PgServer

BACKENDS = ("sqlite", "postgresql")
EndTransaction = Callable[[Transaction], Awaitable[None]]


def postgres_config(url: str, **overrides: Any) -> StoreConfig:
    """A StoreConfig for a PostgreSQL URL, with short timeouts so a failing test fails fast."""
    settings: dict[str, Any] = {"acquire_timeout_s": 5.0, "connect_timeout_s": 2.0, **overrides}
    return StoreConfig(url=Secret(url), path=Path(), backend="postgresql", **settings)


def sqlite_config(path: Path) -> StoreConfig:
    return StoreConfig(url=Secret(f"sqlite:///{path}"), path=path, backend="sqlite")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The store under test, opened and migrated the way the app opens it (``open_store``)."""
    if request.param == "postgresql":
        config = postgres_config(request.getfixturevalue("pg_url"))
    else:
        config = sqlite_config(tmp_path / "db" / "sidecar.sqlite3")
    opened = await open_store(config)
    yield opened
    await opened.close()


@pytest.fixture
def end_transaction(store: Store, request: pytest.FixtureRequest) -> EndTransaction:
    """Make the database end an open transaction by itself, as each engine does in production.

    SQLite rolls back on its own after a full disk or an I/O error (a ROLLBACK on the store's
    connection stands in for it); PostgreSQL loses the session on a failover or an
    administrator's ``pg_terminate_backend``, which is what happens here, for real.
    """
    if isinstance(store, SqliteStore):
        sqlite_store = store

        async def rollback(tx: Transaction) -> None:
            await sqlite_store._conn.execute("ROLLBACK")

        return rollback
    server: PgServer = request.getfixturevalue("pg_server")

    async def terminate(tx: Transaction) -> None:
        pid = tx._conn.info.backend_pid  # type: ignore[attr-defined]
        async with await psycopg.AsyncConnection.connect(server.url(), autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

    return terminate
