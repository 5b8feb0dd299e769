"""SQLite repositories for tokens, the relay inbox and the audit trail.

Each method is one unit of work on its scope: its own transaction on the Store, or a part of
the caller's transaction inside ``store.transaction()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import aiosqlite

from common.config import Secret
from contract import Envelope, Reply
from sidecar.store import rows
from sidecar.store.interfaces import AuditRecord, InboxCompletion, InboxRecord, TokenRecord


class Scope(Protocol):
    def unit(self, write: bool = False) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...


async def fetch_one(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> aiosqlite.Row | None:
    async with conn.execute(sql, params) as cursor:
        return await cursor.fetchone()


async def fetch_all(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> list[aiosqlite.Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def change(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> int:
    """Run a write and return how many rows it touched."""
    async with conn.execute(sql, params) as cursor:
        return cursor.rowcount


class SqliteTokenStore:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def get(self, key: str) -> TokenRecord | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(conn, f"SELECT {rows.TOKEN_COLUMNS} FROM tokens WHERE key = ?", (key,))  # noqa: S608
        return rows.token(row) if row else None

    async def save(
        self, key: str, token: str, *, expires_at: float, fetched_at: float, expected_version: int
    ) -> TokenRecord | None:
        new_version = expected_version + 1
        async with self._scope.unit(write=True) as conn:
            if expected_version == 0:
                written = await change(
                    conn,
                    "INSERT INTO tokens (key, token, expires_at, fetched_at, version) VALUES (?, ?, ?, ?, 1)"
                    " ON CONFLICT (key) DO NOTHING",
                    (key, token, expires_at, fetched_at),
                )
            else:
                written = await change(
                    conn,
                    "UPDATE tokens SET token = ?, expires_at = ?, fetched_at = ?, version = version + 1"
                    " WHERE key = ? AND version = ?",
                    (token, expires_at, fetched_at, key, expected_version),
                )
        if not written:
            return None
        return TokenRecord(key, Secret(token), expires_at, fetched_at, new_version)

    async def invalidate(self, key: str, token: str) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "UPDATE tokens SET expires_at = 0, version = version + 1"
                    " WHERE key = ? AND token = ? AND expires_at > 0",
                    (key, token),
                )
            )

    async def acquire_refresh(self, key: str, owner: str, *, now: float, ttl_s: float) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "INSERT INTO token_leases (key, owner, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until"
                    " WHERE token_leases.until <= ? OR token_leases.owner = excluded.owner",
                    (key, owner, now + ttl_s, now),
                )
            )

    async def release_refresh(self, key: str, owner: str) -> None:
        async with self._scope.unit(write=True) as conn:
            await change(conn, "DELETE FROM token_leases WHERE key = ? AND owner = ?", (key, owner))


class SqliteInboxStore:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def add(self, envelope: Envelope, *, received_at: float) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "INSERT INTO inbox (event_id, account, envelope, received_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    (envelope["id"], envelope["account"], rows.dumps(envelope), received_at),
                )
            )

    async def add_many(self, envelopes: Sequence[Envelope], *, received_at: float) -> set[str]:
        """One multi-row INSERT per ``_ROWS_PER_STATEMENT`` events: one round trip, not one each."""
        inserted: set[str] = set()
        async with self._scope.unit(write=True) as conn:
            for start in range(0, len(envelopes), _ROWS_PER_STATEMENT):
                chunk = envelopes[start : start + _ROWS_PER_STATEMENT]
                values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                params = [p for e in chunk for p in (e["id"], e["account"], rows.dumps(e), received_at)]
                ids = await conn.execute_fetchall(
                    f"INSERT INTO inbox (event_id, account, envelope, received_at) VALUES {values}"  # noqa: S608
                    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                    params,
                )
                inserted.update(row[0] for row in ids)
        return inserted

    async def get(self, event_id: str) -> InboxRecord | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(conn, f"{_INBOX_SELECT} WHERE event_id = ?", (event_id,))
        return rows.inbox_record(row) if row else None

    async def get_many(self, event_ids: Iterable[str]) -> dict[str, InboxRecord]:
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, InboxRecord] = {}
        async with self._scope.unit() as conn:
            for start in range(0, len(wanted), _ROWS_PER_STATEMENT):
                chunk = wanted[start : start + _ROWS_PER_STATEMENT]
                marks = ", ".join("?" * len(chunk))
                found_rows = await conn.execute_fetchall(f"{_INBOX_SELECT} WHERE event_id IN ({marks})", chunk)
                found.update((row[0], rows.inbox_record(row)) for row in found_rows)
        return found

    async def complete(
        self, event_id: str, *, reply: Reply | None, processed_at: float, error: str | None = None
    ) -> None:
        await self.complete_many([InboxCompletion(event_id, processed_at, reply, error)])

    async def complete_many(self, completions: Sequence[InboxCompletion]) -> None:
        if not completions:
            return
        values = [(c.processed_at, rows.dumps(c.reply) if c.reply else None, c.error, c.event_id) for c in completions]
        async with self._scope.unit(write=True) as conn:
            sql = "UPDATE inbox SET processed_at = ?, reply = ?, error = ? WHERE event_id = ?"
            async with conn.executemany(sql, values):
                pass

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM inbox WHERE received_at < ? AND processed_at IS NOT NULL", (before,))


class SqliteAuditStore:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def record(self, entry: AuditRecord) -> None:
        async with self._scope.unit(write=True) as conn:
            await change(
                conn,
                f"INSERT INTO audit ({rows.AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                rows.audit_values(entry),
            )

    async def list(
        self, *, limit: int = 100, app_code: str | None = None, request_id: str | None = None
    ) -> list[AuditRecord]:
        clauses, params = [], []
        if app_code is not None:
            clauses.append("app_code = ?")
            params.append(app_code)
        if request_id is not None:
            clauses.append("request_id = ?")
            params.append(request_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {rows.AUDIT_COLUMNS} FROM audit {where} ORDER BY id DESC LIMIT ?"  # noqa: S608 - fixed clauses
        async with self._scope.unit() as conn:
            found = await fetch_all(conn, sql, (*params, limit))
        return [rows.audit(r) for r in found]

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM audit WHERE at < ?", (before,))


_INBOX_SELECT = f"SELECT {rows.INBOX_COLUMNS} FROM inbox"  # noqa: S608 - fixed columns
# Rows per multi-row statement: 100 events (a relayed batch) use 400 of SQLite's 32766 variables.
_ROWS_PER_STATEMENT = 100

