"""PostgreSQL repositories for user bindings, binding sessions and one-time binding links.

"One WeChat id per user, one user per WeChat id" is the table's PRIMARY KEY (account, username)
and UNIQUE (account, wx_id), as on SQLite. Inserts say ``ON CONFLICT DO NOTHING`` and read the
row count instead of catching a unique violation: on PostgreSQL a failed statement would abort
the caller's whole transaction, while a skipped row leaves it going, so ``import_rows`` and a
handler's savepoint behave exactly as they do on SQLite. Two replicas racing for one binding
still meet at the constraint: the second waits for the first's commit, then skips, and is told
UserAlreadyBound or WxIdTaken.
"""

from __future__ import annotations

from collections.abc import Iterable

from sidecar.errors import BindingConflict, StoreError, UserAlreadyBound, WxIdTaken
from sidecar.store import rows
from sidecar.store.interfaces import Binding, BindingAttempt, BindingLink, ImportResult, SessionStatus
from sidecar.store.postgres_repos import Conn, PgScope, change, fetch_all, fetch_one

_BY_USER = f"SELECT {rows.BINDING_COLUMNS} FROM bindings WHERE account = %s AND username = %s"  # noqa: S608
_BY_WX_ID = f"SELECT {rows.BINDING_COLUMNS} FROM bindings WHERE account = %s AND wx_id = %s"  # noqa: S608


class PgBindingStore:
    def __init__(self, scope: PgScope) -> None:
        self._scope = scope

    async def get(self, account: str, username: str) -> Binding | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(conn, _BY_USER, (account, username))
        return rows.binding(row) if row else None

    async def get_many(self, account: str, usernames: Iterable[str]) -> dict[str, Binding]:
        wanted = sorted(set(usernames))
        sql = f"SELECT {rows.BINDING_COLUMNS} FROM bindings WHERE account = %s AND username = ANY(%s)"  # noqa: S608
        async with self._scope.unit() as conn:
            found = await fetch_all(conn, sql, (account, wanted))
        return {row[1]: rows.binding(row) for row in found}

    async def by_wx_id(self, account: str, wx_id: str) -> Binding | None:
        async with self._scope.unit() as conn:
            row = await fetch_one(conn, _BY_WX_ID, (account, wx_id))
        return rows.binding(row) if row else None

    async def bind(self, account: str, username: str, wx_id: str, *, now: float) -> Binding:
        async with self._scope.unit(write=True) as conn:
            return await _bind(conn, account, username, wx_id, now)

    async def unbind(self, account: str, username: str) -> bool:
        async with self._scope.unit(write=True) as conn:
            deleted = await change(
                conn, "DELETE FROM bindings WHERE account = %s AND username = %s", (account, username)
            )
        return bool(deleted)

    async def set_active_by_wx_id(self, account: str, wx_id: str, active: bool, *, now: float) -> bool:
        async with self._scope.unit(write=True) as conn:
            return bool(
                await change(
                    conn,
                    "UPDATE bindings SET active = %s, updated_at = %s"
                    " WHERE account = %s AND wx_id = %s AND active != %s",
                    (int(active), now, account, wx_id, int(active)),
                )
            )

    async def list(self, account: str | None = None, *, limit: int = 1000, offset: int = 0) -> list[Binding]:
        where, params = ("WHERE account = %s", (account,)) if account is not None else ("", ())
        sql = f"SELECT {rows.BINDING_COLUMNS} FROM bindings {where} ORDER BY account, username LIMIT %s OFFSET %s"  # noqa: S608
        async with self._scope.unit() as conn:
            found = await fetch_all(conn, sql, (*params, limit, offset))
        return [rows.binding(r) for r in found]

    async def import_rows(self, rows_in: Iterable[Binding], *, now: float) -> ImportResult:
        imported = 0
        skipped: list[tuple[str, str]] = []
        async with self._scope.unit(write=True) as conn:
            for row in rows_in:
                try:
                    await _bind(conn, row.account, row.username, row.wx_id, row.bound_at or now, active=row.active)
                    imported += 1
                except BindingConflict as exc:
                    skipped.append((row.username, exc.detail))
        return ImportResult(imported, tuple(skipped))


async def _bind(conn: Conn, account: str, username: str, wx_id: str, now: float, *, active: bool = True) -> Binding:
    """Bind inside an open unit; reactivates the same pair if it was marked inactive."""
    mine = await fetch_one(conn, _BY_USER, (account, username))
    if mine is not None:
        current = rows.binding(mine)
        if current.wx_id == wx_id and not current.active and active:
            await change(
                conn,
                "UPDATE bindings SET active = 1, updated_at = %s WHERE account = %s AND username = %s AND active = 0",
                (now, account, username),
            )
            return Binding(account, username, wx_id, True, current.bound_at, now)
        raise UserAlreadyBound(f"{username} is already bound on {account}")
    inserted = await change(
        conn,
        "INSERT INTO bindings (account, username, wx_id, active, bound_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (account, username, wx_id, int(active), now, now),
    )
    if not inserted:
        if await fetch_one(conn, "SELECT 1 FROM bindings WHERE account = %s AND wx_id = %s", (account, wx_id)):
            raise WxIdTaken(f"the WeChat id is already bound to another user on {account}")
        raise UserAlreadyBound(f"{username} is already bound on {account}")
    return Binding(account, username, wx_id, active, now, now)


class PgBindingAttemptStore:
    def __init__(self, scope: PgScope) -> None:
        self._scope = scope

    async def create(self, session: BindingAttempt) -> None:
        async with self._scope.unit(write=True) as conn:
            inserted = await change(
                conn,
                f"INSERT INTO binding_sessions ({rows.SESSION_COLUMNS})"  # noqa: S608
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows.session_values(session),
            )
        if not inserted:
            raise StoreError("binding session id or scene already exists")

    async def get(self, session_id: str) -> BindingAttempt | None:
        return await self._one("id = %s", (session_id,))

    async def by_scene(self, account: str, scene: str) -> BindingAttempt | None:
        return await self._one("account = %s AND scene = %s", (account, scene))

    async def latest_for_user(self, account: str, username: str) -> BindingAttempt | None:
        # seq stands in for SQLite's rowid: of two attempts created in one instant, the later wins.
        return await self._one(
            "account = %s AND username = %s ORDER BY created_at DESC, seq DESC", (account, username)
        )

    async def _one(self, where: str, params: tuple[str, ...]) -> BindingAttempt | None:
        sql = f"SELECT {rows.SESSION_COLUMNS} FROM binding_sessions WHERE {where} LIMIT 1"  # noqa: S608 - fixed clauses
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
                    "UPDATE binding_sessions SET status = %s, wx_id = %s, message = %s, finished_at = %s"
                    " WHERE id = %s AND status = 'pending' AND expires_at > %s",
                    (status, wx_id, message, now, session_id, now),
                )
            )

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM binding_sessions WHERE expires_at < %s", (before,))


class PgBindingLinkStore:
    def __init__(self, scope: PgScope) -> None:
        self._scope = scope

    async def create(self, link: BindingLink) -> None:
        async with self._scope.unit(write=True) as conn:
            inserted = await change(
                conn,
                f"INSERT INTO binding_links ({rows.LINK_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
                " ON CONFLICT DO NOTHING",
                (link.token_hash, link.username, link.account, link.created_at, link.expires_at, link.used_at),
            )
        if not inserted:
            raise StoreError("binding link already exists")

    async def consume(self, token_hash: str, *, now: float) -> BindingLink | None:
        """One conditional UPDATE … RETURNING: of two replicas consuming at once, one gets the row."""
        async with self._scope.unit(write=True) as conn:
            row = await fetch_one(
                conn,
                "UPDATE binding_links SET used_at = %s"  # noqa: S608 - fixed columns
                " WHERE token_hash = %s AND used_at IS NULL AND expires_at > %s"
                f" RETURNING {rows.LINK_COLUMNS}",
                (now, token_hash, now),
            )
        return rows.link(row) if row else None

    async def purge(self, before: float) -> int:
        async with self._scope.unit(write=True) as conn:
            return await change(conn, "DELETE FROM binding_links WHERE expires_at < %s", (before,))
