"""PostgreSQL schema versions: migrate once across replicas, and read the version without migrating.

Several sidecar replicas may start together on one fresh database. ``migrate`` takes a
session-level advisory lock (``pg_advisory_lock``) before it even creates the version table,
so the second replica waits for the first and then finds every migration applied; each
migration still runs in its own transaction (PostgreSQL's DDL is transactional, so a failing
one leaves nothing behind and is retried on the next start). The lock is per database, and the
server drops it if the connection dies, so a replica killed mid-migration blocks no one.
"""

from __future__ import annotations

import contextlib
import logging

import psycopg

from sidecar.errors import StoreError
from sidecar.store.migrations import MIGRATIONS, Migration, check_order
from sidecar.store.postgres_repos import Conn, fetch_one

log = logging.getLogger(__name__)

# The advisory lock key every sidecar takes to migrate ("wxmigr" in ASCII); scoped to the database.
MIGRATION_LOCK = 0x77786D69677200


async def migrate(conn: Conn, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply each migration newer than the database once; refuse a database newer than the code."""
    check_order(migrations)
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for migration in migrations:
            await _apply(conn, migration)
        current = await current_version(conn)
    finally:
        with contextlib.suppress(psycopg.Error):  # a dead connection has dropped the lock already
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    problem = schema_problem(current, migrations)  # after migrating, only "newer than this code" remains
    if problem:
        raise StoreError(problem)
    return current


async def _apply(conn: Conn, migration: Migration) -> None:
    async with conn.transaction():
        if await current_version(conn) >= migration.version:
            return
        for statement in migration.statements_for("postgresql"):
            await conn.execute(statement)  # fixed SQL from migrations.py
        await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (migration.version,))
    log.info("store migrated", extra={"version": migration.version, "about": migration.description})


async def current_version(conn: Conn) -> int:
    """The database's schema version; 0 when it was never migrated (no version table yet)."""
    exists = await fetch_one(conn, "SELECT to_regclass('schema_version') IS NOT NULL", ())
    if not exists or not exists[0]:
        return 0
    row = await fetch_one(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_version", ())
    return int(row[0]) if row else 0


def schema_problem(version: int, migrations: tuple[Migration, ...] = MIGRATIONS) -> str | None:
    """Why a database at ``version`` cannot serve this sidecar as it is, or None when it can."""
    latest = len(migrations)
    if version < latest:
        return (
            f"database not migrated (schema version {version}, this sidecar needs {latest}):"
            " start the sidecar once to apply the migrations"
        )
    if version > latest:
        return f"database schema version {version} is newer than this sidecar ({latest})"
    return None
