"""The Store on PostgreSQL through psycopg 3 and a bounded connection pool.

Several sidecar replicas may share one database, so nothing here relies on in-process state for
correctness: the repositories settle every race with unique keys and conditional UPDATEs. Each
unit of work borrows a pooled connection: a read runs as one auto-committed statement, a write
inside ``BEGIN``…``COMMIT``, and ``transaction()`` holds one connection for the whole unit, with
``savepoint()`` nesting SQL savepoints (``sp1``, ``sp2``… per transaction) as on SQLite.

Every driver or pool failure (refused connection, server restart, statement timeout, no free
connection within ``acquire_timeout_s``) becomes StoreUnavailable where it happens. Before a
COMMIT the connection's transaction status is checked: PostgreSQL answers COMMIT on an aborted
or already-ended transaction with a silent rollback, which must not be reported as success.
The URL is revealed only to the driver and appears in no message.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from sidecar.config import StoreConfig
from sidecar.errors import NestedTransaction, StoreUnavailable
from sidecar.store.postgres_binding import PgBindingAttemptStore, PgBindingLinkStore, PgBindingStore
from sidecar.store.postgres_repos import Conn, PgAuditStore, PgInboxStore, PgScope, PgTokenStore
from sidecar.store.postgres_schema import current_version, migrate, schema_problem

T = TypeVar("T")

# The store whose transaction the current task holds; lets a nested call fail loudly.
_holding: contextvars.ContextVar[object | None] = contextvars.ContextVar("sidecar_pg_holding", default=None)


class _Repos:
    """The six repositories over one scope (auto-committing, or one open transaction)."""

    def __init__(self, scope: PgScope) -> None:
        self.tokens = PgTokenStore(scope)
        self.inbox = PgInboxStore(scope)
        self.bindings = PgBindingStore(scope)
        self.binding_attempts = PgBindingAttemptStore(scope)
        self.binding_links = PgBindingLinkStore(scope)
        self.audit = PgAuditStore(scope)


class _TxScope:
    """Statements inside an open transaction: no BEGIN/COMMIT of their own."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    @asynccontextmanager
    async def unit(self, write: bool = False) -> AsyncIterator[Conn]:
        _still_open(self._conn)
        try:
            yield self._conn
        except psycopg.Error as exc:
            raise _unavailable(exc) from None


class _Transaction(_Repos):
    """The repositories of one open transaction, plus nested savepoints (``Transaction``)."""

    def __init__(self, conn: Conn) -> None:
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
        await _run(self._conn.execute(f"SAVEPOINT {name}"))  # name is ours, never input
        try:
            yield self
        except BaseException:
            _still_open(self._conn, aborted_ok=True)  # ROLLBACK TO is what clears an aborted state
            await _run(self._conn.execute(f"ROLLBACK TO SAVEPOINT {name}"))
            await _run(self._conn.execute(f"RELEASE SAVEPOINT {name}"))
            raise
        _still_open(self._conn)
        await _run(self._conn.execute(f"RELEASE SAVEPOINT {name}"))


class PgStore(_Repos):
    """Open with :func:`open_postgres_store`; close with :meth:`close`."""

    def __init__(self, pool: AsyncConnectionPool[Conn], acquire_timeout_s: float) -> None:
        self._pool = pool
        self._acquire_timeout_s = acquire_timeout_s
        super().__init__(self)

    def __repr__(self) -> str:
        return f"PgStore(pool={self._pool.name!r})"  # never the URL: it may carry a password

    @asynccontextmanager
    async def unit(self, write: bool = False) -> AsyncIterator[Conn]:
        """One unit of work on a pooled connection; a write is one transaction."""
        if _holding.get() is self:
            raise NestedTransaction("store call on the Store while this task holds a transaction; use the tx")
        held = _holding.set(self)
        try:
            async with self._connection() as conn:
                if write:
                    async with _committed(conn):
                        yield conn
                else:
                    try:
                        yield conn
                    except psycopg.Error as exc:
                        raise _unavailable(exc) from None
        finally:
            _holding.reset(held)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        try:
            conn = await self._pool.getconn(timeout=self._acquire_timeout_s)
        except psycopg.Error as exc:  # PoolTimeout too: no connection came free, or none could be made
            raise _unavailable(exc) from None
        try:
            yield conn
        finally:
            await self._pool.putconn(conn)  # a broken connection is discarded, an open transaction rolled back

    def transaction(self) -> AbstractAsyncContextManager[_Transaction]:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_Transaction]:
        async with self.unit(write=True) as conn:
            yield _Transaction(conn)

    async def ping(self) -> None:
        async with self.unit() as conn:
            await conn.execute("SELECT 1")

    async def schema_version(self) -> int:
        async with self.unit() as conn:
            return await current_version(conn)

    async def close(self) -> None:
        await self._pool.close()


@asynccontextmanager
async def _committed(conn: Conn) -> AsyncIterator[None]:
    """BEGIN … COMMIT around the block; rolled back on any exception, committed only if still open."""
    await _run(conn.execute("BEGIN"))
    try:
        yield
    except psycopg.Error as exc:
        await _rollback(conn)
        raise _unavailable(exc) from None
    except BaseException:
        await _rollback(conn)
        raise
    _still_open(conn)
    await _run(conn.execute("COMMIT"))


async def open_postgres_store(config: StoreConfig) -> PgStore:
    """Migrate the database on one direct connection (under the advisory lock), then open the pool.

    The direct connection reports an unreachable server at once, with libpq's reason, where a
    pool would retry in the background until its timeout and say only that it timed out.
    """
    async with await _connect(config) as conn:
        await _run(migrate(conn))
    pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
        config.url.reveal(),
        min_size=config.pool_min_size,
        max_size=config.pool_max_size,
        timeout=config.acquire_timeout_s,
        kwargs=_connect_kwargs(config),
        configure=_configure(config.statement_timeout_s),
        check=AsyncConnectionPool.check_connection,  # a connection the server dropped is replaced, not used
        name="sidecar-store",
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=config.connect_timeout_s)
    except psycopg.Error as exc:
        await pool.close()
        raise _unavailable(exc, "database unreachable") from None
    return PgStore(pool, config.acquire_timeout_s)


async def check_postgres(config: StoreConfig) -> str | None:
    """``--check``: one line saying why the database cannot serve this sidecar, or None.

    Connects once and reads the schema version without migrating anything.
    """
    try:
        async with await _connect(config) as conn:
            version = await _run(current_version(conn))
    except StoreUnavailable as exc:
        return exc.detail
    return schema_problem(version)


async def _connect(config: StoreConfig) -> Conn:
    try:
        conn = await psycopg.AsyncConnection.connect(config.url.reveal(), **_connect_kwargs(config))
        await _configure(config.statement_timeout_s)(conn)
    except psycopg.Error as exc:
        raise _unavailable(exc, "database unreachable") from None
    return conn


def _connect_kwargs(config: StoreConfig) -> dict[str, Any]:
    """Driver settings on top of the URL's own libpq parameters (``sslmode`` etc. pass through)."""
    return {
        "autocommit": True,  # transactions are explicit: BEGIN/COMMIT in _committed
        "connect_timeout": max(1, math.ceil(config.connect_timeout_s)),
        "fallback_application_name": "wx-sidecar",  # the DBA sees who is connected
    }


def _configure(statement_timeout_s: float) -> Callable[[Conn], Awaitable[None]]:
    async def configure(conn: Conn) -> None:
        """Bound every statement on this connection: a stuck query must not hang a caller."""
        timeout = f"{max(1, round(statement_timeout_s * 1000))}ms"
        await conn.execute("SELECT set_config('statement_timeout', %s, false)", (timeout,))

    return configure


def _still_open(conn: Conn, *, aborted_ok: bool = False) -> None:
    """Raise StoreUnavailable unless the connection is inside a live transaction."""
    status = conn.info.transaction_status
    if status == pq.TransactionStatus.INTRANS:
        return
    if status == pq.TransactionStatus.INERROR:
        if aborted_ok:
            return
        raise StoreUnavailable("store: a statement failed, so the database rolled the transaction back")
    raise StoreUnavailable("store: the database ended the transaction (rolled back)")


async def _rollback(conn: Conn) -> None:
    """Roll back, quietly if the connection is gone (the pool then discards it)."""
    with contextlib.suppress(psycopg.Error):
        await conn.execute("ROLLBACK")


def _unavailable(exc: psycopg.Error, what: str = "store") -> StoreUnavailable:
    """The driver's first line (libpq's reason; never the URL or parameters) as StoreUnavailable."""
    lines = str(exc).strip().splitlines()
    return StoreUnavailable(f"{what}: {lines[0] if lines else type(exc).__name__}")


async def _run(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except psycopg.Error as exc:
        raise _unavailable(exc) from None
