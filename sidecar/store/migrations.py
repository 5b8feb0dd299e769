"""Versioned schema migrations: an ordered list, each applied once, in its own transaction.

Never edit a released migration; append a new one. Write SQL both engines accept (``ON
CONFLICT``, ``TEXT`` JSON, ``DOUBLE PRECISION`` unix times) in ``statements``; where they must
differ, give PostgreSQL its own ``postgresql`` statements. Migration 1 needs them: SQLite's
``REAL`` is 8 bytes but PostgreSQL's is 4 (a unix time would lose minutes), ``AUTOINCREMENT``
is an identity column there, and PostgreSQL has no ``rowid`` to order binding sessions created
in the same instant, so its table carries an explicit ``seq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Engine = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    postgresql: tuple[str, ...] | None = None  # PostgreSQL's own statements, when they must differ

    def statements_for(self, engine: Engine) -> tuple[str, ...]:
        """The statements this engine runs for this migration."""
        if engine == "postgresql" and self.postgresql is not None:
            return self.postgresql
        return self.statements


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
        postgresql=(
            """CREATE TABLE tokens (
                key TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                fetched_at DOUBLE PRECISION NOT NULL,
                version INTEGER NOT NULL
            )""",
            """CREATE TABLE token_leases (
                key TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                until DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE inbox (
                event_id TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                envelope TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                processed_at DOUBLE PRECISION,
                reply TEXT,
                error TEXT
            )""",
            "CREATE INDEX inbox_received_at ON inbox (received_at)",
            """CREATE TABLE bindings (
                account TEXT NOT NULL,
                username TEXT NOT NULL,
                wx_id TEXT NOT NULL,
                active INTEGER NOT NULL DEFAULT 1,
                bound_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                CONSTRAINT bindings_user PRIMARY KEY (account, username),
                CONSTRAINT bindings_wx_id UNIQUE (account, wx_id)
            )""",
            """CREATE TABLE binding_sessions (
                id TEXT PRIMARY KEY,
                account TEXT NOT NULL,
                username TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('mp', 'wecom')),
                scene TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending', 'bound', 'failed')),
                wx_id TEXT,
                message TEXT,
                finished_at DOUBLE PRECISION,
                seq BIGINT GENERATED ALWAYS AS IDENTITY,
                UNIQUE (account, scene)
            )""",
            "CREATE INDEX binding_sessions_user ON binding_sessions (account, username, created_at)",
            """CREATE TABLE binding_links (
                token_hash TEXT PRIMARY KEY,
                username TEXT NOT NULL,
                account TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                used_at DOUBLE PRECISION
            )""",
            """CREATE TABLE audit (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                request_id TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
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
