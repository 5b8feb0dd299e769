"""Storage behind narrow async interfaces (``interfaces``), on SQLite (``sqlite*``) or PostgreSQL
(``postgres*``).

Open it with :func:`open_store`, which picks the engine from the URL's scheme; the app does so
in its first cleanup context and publishes it under ``sidecar.keys.STORE``. ``check_store`` is
what ``--check`` asks of the database.
"""

from __future__ import annotations

from sidecar.config import StoreConfig
from sidecar.store.interfaces import (
    SESSION_STATUSES,
    AuditRecord,
    AuditStore,
    Binding,
    BindingAttempt,
    BindingAttemptStore,
    BindingLink,
    BindingLinkStore,
    BindingStore,
    ImportResult,
    InboxCompletion,
    InboxRecord,
    InboxStore,
    Repositories,
    SessionStatus,
    Store,
    TokenRecord,
    TokenStore,
    Transaction,
)
from sidecar.store.postgres import PgStore, check_postgres, open_postgres_store
from sidecar.store.sqlite import SqliteStore, open_sqlite_store


async def open_store(config: StoreConfig) -> Store:
    """Open the store the config names (``sqlite:///`` or ``postgresql://``), migrated and ready."""
    if config.backend == "postgresql":
        return await open_postgres_store(config)
    return await open_sqlite_store(config.path, busy_timeout_s=config.busy_timeout_s)


async def check_store(config: StoreConfig) -> str | None:
    """One line saying why the store cannot serve this sidecar, or None.

    PostgreSQL is a shared database the operator runs: ``--check`` connects and reports it
    unreachable, not migrated, or newer than this code. A SQLite file is the sidecar's own and
    is created and migrated on start, so there is nothing to ask of it beforehand.
    """
    if config.backend == "postgresql":
        return await check_postgres(config)
    return None


__all__ = [
    "SESSION_STATUSES",
    "AuditRecord",
    "AuditStore",
    "Binding",
    "BindingAttempt",
    "BindingAttemptStore",
    "BindingLink",
    "BindingLinkStore",
    "BindingStore",
    "ImportResult",
    "InboxCompletion",
    "InboxRecord",
    "InboxStore",
    "PgStore",
    "Repositories",
    "SessionStatus",
    "SqliteStore",
    "Store",
    "TokenRecord",
    "TokenStore",
    "Transaction",
    "check_store",
    "open_postgres_store",
    "open_sqlite_store",
    "open_store",
]
