"""PostgreSQL repositories for tokens, the relay inbox and the audit trail.

The same contracts as sidecar/store/sqlite_repos.py, settled the same way, by the database:
``ON CONFLICT`` on the unique keys and UPDATEs conditional on the row's current state. A batch
travels as arrays in one statement (``unnest``, ``= ANY``), so a relayed batch of 100 events is
one round trip whatever its size. Each method is one unit of work on its scope: its own
transaction on the Store, or a part of the caller's transaction inside ``store.transaction()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from common.config import Secret
from contract import Envelope, Reply
from sidecar.store import rows
from sidecar.store.interfaces import AuditRecord, InboxCompletion, InboxRecord, TokenRecord

Conn = AsyncConnection[TupleRow]


class PgScope(Protocol):
    def unit(self, write: bool = False) -> AbstractAsyncContextManager[Conn]: ...


async def fetch_one(conn: Conn, sql: str, params: Sequence[Any]) -> TupleRow | None:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def fetch_all(conn: Conn, sql: str, params: Sequence[Any]) -> list[TupleRow]:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchall()


async def change(conn: Conn, sql: str, params: Sequence[Any]) -> int:
    """Run a write and return how many rows it touched."""
    cursor = await conn.execute(sql, params)
    return cursor.rowcount


class PgTokenStore:
    def __init__(self, scope: PgScope) -> None:
        self._scope = scope

    async def get(self, key: str) -> TokenRecord | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(conn, f"SELECT {rows.TOKEN_COLUMNS} FROM tokens WHERE key = %s", (key,))  # noqa: S608
        return rows.token(row) if row else None

    async def save(
        self, key: str, token: str, *, expires_at: float, fetched_at: float, expected_version: int
    ) -> TokenRecord | None:
        async with self._scope.unit(write=True) as conn:
            if expected_version == 0:
                written = await change(
                    conn,
                    "INSERT INTO tokens (key, token, expires_at, fetched_at, version) VALUES (%s, %s, %s, %s, 1)"
                    " ON CONFLICT (key) DO NOTHING",
                    (key, token, expires_at, fetched_at),
                )
            else:
                written = await change(
                    conn,
                    "UPDATE tokens SET token = %s, expires_at = %s, fetched_at = %s, version = version + 1"
                    " WHERE key = %s AND version = %s",
                    (token, expires_at, fetched_at, key, expected_version),
                )
        if not written:
            return None
        return TokenRecord(key, Secret(token), expires_at, fetched_at, expected_version + 1)

    async def invalidate(self, key: str, token: str) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "UPDATE tokens SET expires_at = 0, version = version + 1"
                    " WHERE key = %s AND token = %s AND expires_at > 0",
                    (key, token),
                )
            )

    async def acquire_refresh(self, key: str, owner: str, *, now: float, ttl_s: float) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "INSERT INTO token_leases (key, owner, until) VALUES (%s, %s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until"
                    " WHERE token_leases.until <= %s OR token_leases.owner = EXCLUDED.owner",
                    (key, owner, now + ttl_s, now),
                )
            )

    async def release_refresh(self, key: str, owner: str) -> None:
        async with self._scope.unit(write=True) as conn:
            await change(conn, "DELETE FROM token_leases WHERE key = %s AND owner = %s", (key, owner))


class PgInboxStore:
    def __init__(self, scope: PgScope) -> None:
        self._scope = scope

    async def add(self, envelope: Envelope, *, received_at: float) -> bool:
        return bool(await self.add_many([envelope], received_at=received_at))

    async def add_many(self, envelopes: Sequence[Envelope], *, received_at: float) -> set[str]:
        """One INSERT of the batch as arrays; the first of several events with one id wins."""
        first: dict[str, Envelope] = {}
        for envelope in envelopes:
            first.setdefault(envelope["id"], envelope)
        unique = list(first.values())
        if not unique:
            return set()
        async with self._scope.unit(write=True) as conn:
            inserted = await fetch_all(
                conn,
                "INSERT INTO inbox (event_id, account, envelope, received_at)"
                " SELECT e.id, e.account, e.envelope, %s"
                " FROM unnest(%s::text[], %s::text[], %s::text[]) AS e(id, account, envelope)"
                " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                (
                    received_at,
                    [e["id"] for e in unique],
                    [e["account"] for e in unique],
                    [rows.dumps(e) for e in unique],
                ),
            )
        return {row[0] for row in inserted}

    async def get(self, event_id: str) -> InboxRecord | None:
        return (await self.get_many([event_id])).get(event_id)

    async def get_many(self, event_ids: Iterable[str]) -> dict[str, InboxRecord]:
        wanted = list(dict.fromkeys(event_ids))
        async with self._scope.unit() as conn:
            found = await fetch_all(conn, f"{_INBOX_SELECT} WHERE event_id = ANY(%s)", (wanted,))
        return {row[0]: rows.inbox_record(row) for row in found}

    async def complete(
        self, event_id: str, *, reply: Reply | None, processed_at: float, error: str | None = None
    ) -> None:
        await self.complete_many([InboxCompletion(event_id, processed_at, reply, error)])

    async def complete_many(self, completions: Sequence[InboxCompletion]) -> None:
        if not completions:
            return
        async with self._scope.unit(write=True) as conn:
            await change(
                conn,
                "UPDATE inbox SET processed_at = c.processed_at, reply = c.reply, error = c.error"
                " FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[]) AS c(event_id, processed_at, reply,"
                " error) WHERE inbox.event_id = c.event_id",
                (
                    [c.event_id for c in completions],
                    [c.processed_at for c in completions],
                    [rows.dumps(c.reply) if c.reply else None for c in completions],
                    [c.error for c in completions],
                ),
            )

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(
                conn, "DELETE FROM inbox WHERE received_at < %s AND processed_at IS NOT NULL", (before,)
            )


class PgAuditStore:
    def __init__(self, scope: PgScope) -> None:
        self._scope = scope

    async def record(self, entry: AuditRecord) -> None:
        async with self._scope.unit(write=True) as conn:
            await change(
                conn,
                f"INSERT INTO audit ({rows.AUDIT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
                rows.audit_values(entry),
            )

    async def list(
        self, *, limit: int = 100, app_code: str | None = None, request_id: str | None = None
    ) -> list[AuditRecord]:
        clauses, params = [], []
        if app_code is not None:
            clauses.append("app_code = %s")
            params.append(app_code)
        if request_id is not None:
            clauses.append("request_id = %s")
            params.append(request_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {rows.AUDIT_COLUMNS} FROM audit {where} ORDER BY id DESC LIMIT %s"  # noqa: S608 - fixed clauses
        async with self._scope.unit() as conn:
            found = await fetch_all(conn, sql, (*params, limit))
        return [rows.audit(r) for r in found]

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM audit WHERE at < %s", (before,))


_INBOX_SELECT = f"SELECT {rows.INBOX_COLUMNS} FROM inbox"  # noqa: S608 - fixed columns
