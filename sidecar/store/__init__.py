"""Storage behind narrow async interfaces (``base``), implemented on SQLite (``sqlite``).

Open it with :func:`open_store`; the app does so in its first cleanup context and publishes it
under ``sidecar.keys.STORE``.
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
from sidecar.store.sqlite import SqliteStore, open_sqlite_store


async def open_store(config: StoreConfig) -> Store:
    """Open the store the config names (only ``sqlite:///`` today), migrated and ready."""
    return await open_sqlite_store(config.path, busy_timeout_s=config.busy_timeout_s)


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
    "Repositories",
    "SessionStatus",
    "SqliteStore",
    "Store",
    "TokenRecord",
    "TokenStore",
    "Transaction",
    "open_sqlite_store",
    "open_store",
]
