"""Versioned schema migrations: an ordered list, each applied once, in its own transaction.

Never edit a released migration; append a new one. The SQL sticks to what SQLite and
PostgreSQL share (``ON CONFLICT``, ``REAL`` unix times, ``TEXT`` JSON), so a PostgreSQL
implementation can reuse it with the one noted difference (``AUTOINCREMENT`` → identity).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "tokens, inbox, bindings, binding sessions and links, audit",
        (
            """CREATE TABLE tokens (
                key TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                expires_at REAL NOT NULL,
                fetched_at REAL NOT NULL,
                version INTEGER NOT NULL
            )""",
            """CREATE TABLE token_leases (
                key TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                until REAL NOT NULL
            )""",
            """CREATE TABLE inbox (
                event_id TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                envelope TEXT NOT NULL,
                received_at REAL NOT NULL,
                processed_at REAL,
                reply TEXT,
                error TEXT
            )""",
            "CREATE INDEX inbox_received_at ON inbox (received_at)",
            """CREATE TABLE bindings (
                account TEXT NOT NULL,
                username TEXT NOT NULL,
                wx_id TEXT NOT NULL,
                active INTEGER NOT NULL DEFAULT 1,
                bound_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (account, username),
                UNIQUE (account, wx_id)
            )""",
            """CREATE TABLE binding_sessions (
                id TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                username TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('mp', 'wecom')),
                scene TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'bound', 'failed')),
                wx_id TEXT,
                message TEXT,
                finished_at REAL,
                UNIQUE (account, scene)
            )""",
            "CREATE INDEX binding_sessions_user ON binding_sessions (account, username, created_at)",
            """CREATE TABLE binding_links (
                token_hash TEXT PRIMARY KEY,
                username TEXT NOT NULL,
                account TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                used_at REAL
            )""",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id TEXT NOT NULL,
                at REAL NOT NULL,
                app_code TEXT NOT NULL,
                account TEXT NOT NULL,
                recipients TEXT NOT NULL,
                outcome TEXT NOT NULL,
                errcode INTEGER,
                msgid TEXT,
                detail TEXT NOT NULL,
                body TEXT
            )""",
            "CREATE INDEX audit_at ON audit (at)",
            "CREATE INDEX audit_request_id ON audit (request_id)",
        ),
    ),
)


def check_order(migrations: tuple[Migration, ...]) -> None:
    """Versions must be 1, 2, 3…: a gap or a duplicate is a programming error caught at startup."""
    expected = list(range(1, len(migrations) + 1))
    if [m.version for m in migrations] != expected:
        raise RuntimeError(f"migration versions must be {expected}")
