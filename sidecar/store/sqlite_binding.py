"""SQLite repositories for user bindings, binding sessions and one-time binding links.

"One WeChat id per user, one user per WeChat id" is enforced by the table's PRIMARY KEY
(account, username) and UNIQUE (account, wx_id): a race between two replicas ends in an
IntegrityError for the loser, which becomes UserAlreadyBound or WxIdTaken.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import aiosqlite

from sidecar.errors import BindingConflict, StoreError, UserAlreadyBound, WxIdTaken
from sidecar.store import rows
from sidecar.store.interfaces import Binding, BindingAttempt, BindingLink, ImportResult, SessionStatus
from sidecar.store.sqlite_repos import Scope, change, fetch_all, fetch_one

_BINDING_COLUMNS = rows.BINDING_COLUMNS
_BY_USER = f"SELECT {rows.BINDING_COLUMNS} FROM bindings WHERE account = ? AND username = ?"  # noqa: S608
_BY_WX_ID = f"SELECT {rows.BINDING_COLUMNS} FROM bindings WHERE account = ? AND wx_id = ?"  # noqa: S608
_MAX_IN = 500  # SQLite's default limit on host parameters is far above; keep statements small


class SqliteBindingStore:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def get(self, account: str, username: str) -> Binding | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(
                conn, _BY_USER, (account, username)
            )
        return rows.binding(row) if row else None

    async def get_many(self, account: str, usernames: Iterable[str]) -> dict[str, Binding]:
        wanted = sorted(set(usernames))
        found: dict[str, Binding] = {}
        async with self._scope.unit() as conn:
            for start in range(0, len(wanted), _MAX_IN):
                chunk = wanted[start : start + _MAX_IN]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {_BINDING_COLUMNS} FROM bindings WHERE account = ? AND username IN ({marks})"  # noqa: S608
                for row in await fetch_all(conn, sql, (account, *chunk)):
                    found[row[1]] = rows.binding(row)
        return found

    async def by_wx_id(self, account: str, wx_id: str) -> Binding | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(
                conn, _BY_WX_ID, (account, wx_id)
            )
        return rows.binding(row) if row else None

    async def bind(self, account: str, username: str, wx_id: str, *, now: float) -> Binding:
        async with self._scope.unit(write=True) as conn:
            return await _bind(conn, account, username, wx_id, now)

    async def unbind(self, account: str, username: str) -> bool:
        async with self._scope.unit(write=True) as conn:
            deleted = await change(conn, "DELETE FROM bindings WHERE account = ? AND username = ?", (account, username))
        return bool(deleted)

    async def set_active_by_wx_id(self, account: str, wx_id: str, active: bool, *, now: float) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "UPDATE bindings SET active = ?, updated_at = ? WHERE account = ? AND wx_id = ? AND active != ?",
                    (int(active), now, account, wx_id, int(active)),
                )
            )

    async def list(self, account: str | None = None, *, limit: int = 1000, offset: int = 0) -> list[Binding]:
        where, params = ("WHERE account = ?", (account,)) if account is not None else ("", ())
        sql = f"SELECT {_BINDING_COLUMNS} FROM bindings {where} ORDER BY account, username LIMIT ? OFFSET ?"  # noqa: S608
        async with self._scope.unit() as conn:
            found = await fetch_all(conn, sql, (*params, limit, offset))
        return [rows.binding(r) for r in found]

    async def import_rows(self, rows: Iterable[Binding], *, now: float) -> ImportResult:
        imported = 0
        skipped: list[tuple[str, str]] = []
        async with self._scope.unit(write=True) as conn:
            for row in rows:
                try:
                    await _bind(conn, row.account, row.username, row.wx_id, row.bound_at or now, active=row.active)
                    imported += 1
                except BindingConflict as exc:
                    skipped.append((row.username, exc.detail))
        return ImportResult(imported, tuple(skipped))


async def _bind(
    conn: aiosqlite.Connection, account: str, username: str, wx_id: str, now: float, *, active: bool = True
) -> Binding:
    """Bind inside an open unit; reactivates the same pair if it was marked inactive."""
    mine = await fetch_one(
        conn, _BY_USER, (account, username)
    )
    if mine is not None:
        current = rows.binding(mine)
        if current.wx_id == wx_id and not current.active and active:
            await change(
                conn,
                "UPDATE bindings SET active = 1, updated_at = ? WHERE account = ? AND username = ? AND active = 0",
                (now, account, username),
            )
            return Binding(account, username, wx_id, True, current.bound_at, now)
        raise UserAlreadyBound(f"{username} is already bound on {account}")
    try:
        await change(
            conn,
            "INSERT INTO bindings (account, username, wx_id, active, bound_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (account, username, wx_id, int(active), now, now),
        )
    except sqlite3.IntegrityError:
        taken = await fetch_one(conn, "SELECT 1 FROM bindings WHERE account = ? AND wx_id = ?", (account, wx_id))
        if taken:
            raise WxIdTaken(f"the WeChat id is already bound to another user on {account}") from None
        raise UserAlreadyBound(f"{username} is already bound on {account}") from None
    return Binding(account, username, wx_id, active, now, now)


_SESSION_COLUMNS = rows.SESSION_COLUMNS


class SqliteBindingAttemptStore:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(self, session: BindingAttempt) -> None:
        s = session
        async with self._scope.unit(write=True) as conn:
            try:
                await change(
                    conn,
                    "INSERT INTO binding_sessions (id, account, username, kind, scene, created_at, expires_at,"
                    " status, wx_id, message, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows.session_values(s),
                )
            except sqlite3.IntegrityError:
                raise StoreError("binding session id or scene already exists") from None

    async def get(self, session_id: str) -> BindingAttempt | None:
        return await self._one("id = ?", (session_id,))

    async def by_scene(self, account: str, scene: str) -> BindingAttempt | None:
        return await self._one("account = ? AND scene = ?", (account, scene))

    async def latest_for_user(self, account: str, username: str) -> BindingAttempt | None:
        return await self._one("account = ? AND username = ? ORDER BY created_at DESC, rowid DESC", (account, username))

    async def _one(self, where: str, params: tuple[str, ...]) -> BindingAttempt | None:
        sql = f"SELECT {_SESSION_COLUMNS} FROM binding_sessions WHERE {where} LIMIT 1"  # noqa: S608 - fixed clauses
        async with self._scope.unit() as conn:
            row = await fetch_one(conn, sql, params)
        return rows.session(row) if row else None

    async def finish(
        self,
        session_id: str,
        *,
        status: SessionStatus,
        now: float,
        wx_id: str | None = None,
        message: str | None = None,
    ) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "UPDATE binding_sessions SET status = ?, wx_id = ?, message = ?, finished_at = ?"
                    " WHERE id = ? AND status = 'pending' AND expires_at > ?",
                    (status, wx_id, message, now, session_id, now),
                )
            )

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM binding_sessions WHERE expires_at < ?", (before,))


class SqliteBindingLinkStore:
    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    async def create(self, link: BindingLink) -> None:
        async with self._scope.unit(write=True) as conn:
            try:
                await change(
                    conn,
                    "INSERT INTO binding_links (token_hash, username, account, created_at, expires_at, used_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (link.token_hash, link.username, link.account, link.created_at, link.expires_at, link.used_at),
                )
            except sqlite3.IntegrityError:
                raise StoreError("binding link already exists") from None

    async def consume(self, token_hash: str, *, now: float) -> BindingLink | None:
        async with self._scope.unit(write=True) as conn:
            used = await change(
                conn,
                "UPDATE binding_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                (now, token_hash, now),
            )
            if not used:
                return None
            row = await fetch_one(
                conn, f"SELECT {rows.LINK_COLUMNS} FROM binding_links WHERE token_hash = ?", (token_hash,)  # noqa: S608
            )
        return rows.link(row) if row else None

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM binding_links WHERE expires_at < ?", (before,))
