"""The Store on SQLite through aiosqlite: WAL, a busy timeout, migrations on open.

One connection serves the process. SQLite runs one writer at a time anyway, so units of work
(one repository call, or one ``transaction()``) take turns on an asyncio lock; that lock only
keeps this process's coroutines from interleaving statements on the shared connection. Safety
between processes (a CLI next to the server) comes from ``BEGIN IMMEDIATE`` plus the busy
timeout, and correctness never depends on the lock: the repositories use unique constraints and
conditional UPDATEs, exactly what a PostgreSQL implementation for several replicas would use.
Inside ``transaction()``, ``savepoint()`` nests SQL savepoints (named ``sp1``, ``sp2``… per
transaction), the same statements PostgreSQL takes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from sidecar.errors import NestedTransaction, StoreError, StoreUnavailable
from sidecar.store.migrations import MIGRATIONS, Migration, check_order
from sidecar.store.sqlite_binding import (
    SqliteBindingAttemptStore,
    SqliteBindingLinkStore,
    SqliteBindingStore,
)
from sidecar.store.sqlite_repos import Scope, SqliteAuditStore, SqliteInboxStore, SqliteTokenStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# The store whose lock the current task holds; lets a nested call fail loudly, not deadlock.
_holding: contextvars.ContextVar[object | None] = contextvars.ContextVar("sidecar_store_holding", default=None)


class _Repos:
    """The six repositories over one scope (auto-committing, or one open transaction)."""

    def __init__(self, scope: Scope) -> None:
        self.tokens = SqliteTokenStore(scope)
        self.inbox = SqliteInboxStore(scope)
        self.bindings = SqliteBindingStore(scope)
        self.binding_attempts = SqliteBindingAttemptStore(scope)
        self.binding_links = SqliteBindingLinkStore(scope)
        self.audit = SqliteAuditStore(scope)


class _TxScope:
    """Statements inside an open transaction: no BEGIN/COMMIT of their own.

    A statement never runs once SQLite has ended the transaction by itself (it does on a full
    disk or an I/O error): it would auto-commit on its own, outside the unit of work. And sqlite
    errors become StoreUnavailable here, where they happen, so code between the statement and
    the transaction's edge (handlers, savepoints) sees a StoreError, not a driver exception.
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @asynccontextmanager
    async def unit(self, write: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        _still_open(self._conn)
        try:
            yield self._conn
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"store: {exc}") from None


class _Transaction(_Repos):
    """The repositories of one open transaction, plus nested savepoints (``Transaction``)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        super().__init__(_TxScope(conn))
        self._conn = conn
        self._savepoints = 0

    def __repr__(self) -> str:
        return f"_Transaction(savepoints={self._savepoints})"

    def savepoint(self) -> AbstractAsyncContextManager[_Transaction]:
        return self._savepoint()

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[_Transaction]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"  # unique in the transaction, so savepoints may nest
        _still_open(self._conn)
        await _run(self._conn.execute(f"SAVEPOINT {name}"))
        try:
            yield self
        except BaseException:
            _still_open(self._conn)
            await _run(self._conn.execute(f"ROLLBACK TO SAVEPOINT {name}"))
            await _run(self._conn.execute(f"RELEASE SAVEPOINT {name}"))
            raise
        _still_open(self._conn)
        await _run(self._conn.execute(f"RELEASE SAVEPOINT {name}"))


class SqliteStore(_Repos):
    """Open with :func:`open_sqlite_store`; close with :meth:`close`."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._lock = asyncio.Lock()
        super().__init__(self)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self._path)!r})"

    @asynccontextmanager
    async def unit(self, write: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction on the shared connection; sqlite errors become StoreUnavailable."""
        if _holding.get() is self:
            raise NestedTransaction("store call on the Store while this task holds a transaction; use the tx")
        async with self._lock:
            held = _holding.set(self)
            try:
                await _run(self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN"))
                try:
                    yield self._conn
                except sqlite3.Error as exc:
                    await _run(self._conn.rollback())
                    raise StoreUnavailable(f"store: {exc}") from None
                except BaseException:
                    await _run(self._conn.rollback())
                    raise
                _still_open(self._conn)  # else COMMIT would be a no-op reported as success
                await _run(self._conn.commit())
            finally:
                _holding.reset(held)

    def transaction(self) -> AbstractAsyncContextManager[_Transaction]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Transaction]:
        async with self.unit(write=True) as conn:
            yield _Transaction(conn)

    async def ping(self) -> None:
        async with self.unit() as conn:
            await _run(conn.execute("SELECT 1"))

    async def schema_version(self) -> int:
        async with self.unit() as conn:
            return await _current_version(conn)

    async def close(self) -> None:
        await self._conn.close()


async def open_sqlite_store(path: Path, *, busy_timeout_s: float = 5.0) -> SqliteStore:
    """Open (creating) the database, switch to WAL and apply pending migrations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {path}: {exc}") from None
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        await conn.execute("PRAGMA journal_mode = WAL")
        # FULL: an event acknowledged to the gateway must survive a power cut.
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await migrate(conn)
    except sqlite3.Error as exc:
        await conn.close()
        raise StoreUnavailable(f"cannot prepare {path}: {exc}") from None
    except BaseException:
        await conn.close()
        raise
    return SqliteStore(conn, path)


async def migrate(conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply each migration newer than the database once, each in its own transaction.

    The version is re-read inside ``BEGIN IMMEDIATE``, so two processes starting together apply
    each migration once. A database newer than this code is refused rather than misread.
    """
    check_order(migrations)
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for migration in migrations:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            current = await _current_version(conn)
            if current < migration.version:
                for statement in migration.statements_for("sqlite"):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, datetime('now'))",
                    (migration.version,),
                )
                log.info("store migrated", extra={"version": migration.version, "about": migration.description})
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
    current = await _current_version(conn)
    if current > len(migrations):
        raise StoreError(f"database schema version {current} is newer than this sidecar ({len(migrations)})")
    return current


async def _current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _still_open(conn: aiosqlite.Connection) -> None:
    """Raise StoreUnavailable if SQLite has rolled the open transaction back by itself."""
    if not conn.in_transaction:
        raise StoreUnavailable("store: the database ended the transaction (rolled back)")


async def _run(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"store: {exc}") from None
