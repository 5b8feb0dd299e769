"""What the sidecar keeps, as records and narrow async interfaces, one Protocol per concern.

The interfaces are shaped so a PostgreSQL implementation can serve several sidecar replicas
sharing one database: nothing here relies on in-process state for correctness. Every race that
matters is settled by the database itself, through unique constraints (one binding per user and
per WeChat id; one inbox row per event id) and conditional UPDATEs (a token is replaced only by
a writer who read the current version; a token is invalidated only if it is still the one that
failed; a binding link is consumed once; a binding session finishes once).

Times are unix seconds (float) passed in by the caller, so tests drive them with a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from common.config import Secret
from contract import Envelope, Reply

SessionStatus = Literal["pending", "bound", "failed"]
SESSION_STATUSES: tuple[str, ...] = ("pending", "bound", "failed")


@dataclass(frozen=True)
class TokenRecord:
    """A cached access token; ``version`` grows by one on every write to the row."""

    key: str
    token: Secret
    expires_at: float
    fetched_at: float
    version: int

    def usable(self, now: float, margin_s: float = 0.0) -> bool:
        """True while the token has more than ``margin_s`` seconds left."""
        return self.expires_at - margin_s > now


@dataclass(frozen=True)
class InboxRecord:
    event_id: str
    account: str
    envelope: Envelope
    received_at: float
    processed_at: float | None
    reply: Reply | None
    error: str | None


@dataclass(frozen=True)
class Binding:
    """A platform user ↔ WeChat id (MP openid or WeCom userid) on one account."""

    account: str
    username: str
    wx_id: str
    active: bool = True  # False after ``unsubscribe``: sends report it instead of failing at WeChat
    bound_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class ImportResult:
    imported: int
    skipped: tuple[tuple[str, str], ...] = ()  # (username, reason)


@dataclass(frozen=True)
class BindingAttempt:
    """One binding attempt: an MP QR scene or a WeCom login state, waiting for WeChat."""

    id: str
    account: str
    username: str
    kind: Literal["mp", "wecom"]
    scene: str  # MP: the QR scene_str; WeCom: the OAuth state
    created_at: float
    expires_at: float
    status: SessionStatus = "pending"
    wx_id: str | None = None
    message: str | None = None
    finished_at: float | None = None


@dataclass(frozen=True)
class BindingLink:
    """A one-time link that opens the binding page for a user; only the token's hash is kept."""

    token_hash: str
    username: str
    account: str
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass(frozen=True)
class AuditRecord:
    request_id: str
    at: float
    app_code: str
    account: str
    recipients: Sequence[str]
    outcome: str  # e.g. "ok", "partial", "failed"
    errcode: int | None = None
    msgid: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    body: str | None = None  # only when [audit] store_bodies = true


class TokenStore(Protocol):
    async def get(self, key: str) -> TokenRecord | None: ...

    async def save(
        self, key: str, token: str, *, expires_at: float, fetched_at: float, expected_version: int
    ) -> TokenRecord | None:
        """Write a token only if the row's version is still ``expected_version`` (0: no row yet).

        Returns the new record, or None when another writer (another replica) got there first;
        the caller then reads and uses that writer's token instead of overwriting it blindly.
        """
        ...

    async def invalidate(self, key: str, token: str) -> bool:
        """Expire the stored token only if it is still ``token`` (the one that just failed)."""
        ...

    async def acquire_refresh(self, key: str, owner: str, *, now: float, ttl_s: float) -> bool:
        """Take the cross-replica right to fetch ``key`` for ``ttl_s`` seconds (a lease)."""
        ...

    async def release_refresh(self, key: str, owner: str) -> None: ...


@dataclass(frozen=True)
class InboxCompletion:
    """How one inbox event ended: its passive reply, or the error its handlers raised."""

    event_id: str
    processed_at: float
    reply: Reply | None = None
    error: str | None = None


class InboxStore(Protocol):
    async def add(self, envelope: Envelope, *, received_at: float) -> bool:
        """Insert the event; False when its id is already there (a duplicate delivery)."""
        ...

    async def add_many(self, envelopes: Sequence[Envelope], *, received_at: float) -> set[str]:
        """Insert the events whose ids are not there yet; returns the ids inserted.

        An id not returned is a duplicate: already in the inbox, or earlier in ``envelopes``.
        Settled by the unique event id (``INSERT … ON CONFLICT DO NOTHING RETURNING``, the same
        on PostgreSQL), so two replicas never both insert one: the second waits for the first's
        commit and then skips the row.
        """
        ...

    async def get(self, event_id: str) -> InboxRecord | None: ...

    async def get_many(self, event_ids: Iterable[str]) -> dict[str, InboxRecord]:
        """The records of those ids that are in the inbox, by id."""
        ...

    async def complete(
        self, event_id: str, *, reply: Reply | None, processed_at: float, error: str | None = None
    ) -> None: ...

    async def complete_many(self, completions: Sequence[InboxCompletion]) -> None:
        """Record several events as processed at once (``complete`` for each)."""
        ...

    async def purge(self, before: float) -> int:
        """Drop processed events received before ``before``; returns how many."""
        ...


class BindingStore(Protocol):
    async def get(self, account: str, username: str) -> Binding | None: ...

    async def get_many(self, account: str, usernames: Iterable[str]) -> dict[str, Binding]: ...

    async def by_wx_id(self, account: str, wx_id: str) -> Binding | None: ...

    async def bind(self, account: str, username: str, wx_id: str, *, now: float) -> Binding:
        """Bind, or reactivate the same inactive pair; raise UserAlreadyBound or WxIdTaken."""
        ...

    async def unbind(self, account: str, username: str) -> bool: ...

    async def set_active_by_wx_id(self, account: str, wx_id: str, active: bool, *, now: float) -> bool: ...

    async def list(self, account: str | None = None, *, limit: int = 1000, offset: int = 0) -> list[Binding]: ...

    async def import_rows(self, rows: Iterable[Binding], *, now: float) -> ImportResult:
        """Insert many bindings at once; conflicting rows are skipped and reported, not raised."""
        ...


class BindingAttemptStore(Protocol):
    async def create(self, session: BindingAttempt) -> None: ...

    async def get(self, session_id: str) -> BindingAttempt | None: ...

    async def by_scene(self, account: str, scene: str) -> BindingAttempt | None: ...

    async def latest_for_user(self, account: str, username: str) -> BindingAttempt | None: ...

    async def finish(
        self,
        session_id: str,
        *,
        status: SessionStatus,
        now: float,
        wx_id: str | None = None,
        message: str | None = None,
    ) -> bool:
        """Move a pending, unexpired session to ``status`` once; False if it was not pending."""
        ...

    async def purge(self, before: float) -> int: ...


class BindingLinkStore(Protocol):
    async def create(self, link: BindingLink) -> None: ...

    async def consume(self, token_hash: str, *, now: float) -> BindingLink | None:
        """Mark the link used and return it, only if it is unused and unexpired (works once)."""
        ...

    async def purge(self, before: float) -> int: ...


class AuditStore(Protocol):
    async def record(self, entry: AuditRecord) -> None: ...

    async def list(
        self, *, limit: int = 100, app_code: str | None = None, request_id: str | None = None
    ) -> list[AuditRecord]: ...

    async def purge(self, before: float) -> int: ...


class Repositories(Protocol):
    """The repositories, either auto-committing (on Store) or bound to one transaction."""

    @property
    def tokens(self) -> TokenStore: ...
    @property
    def inbox(self) -> InboxStore: ...
    @property
    def bindings(self) -> BindingStore: ...
    @property
    def binding_attempts(self) -> BindingAttemptStore: ...
    @property
    def binding_links(self) -> BindingLinkStore: ...
    @property
    def audit(self) -> AuditStore: ...


class Transaction(Repositories, Protocol):
    """The repositories bound to one open transaction, which can nest savepoints.

    ``savepoint()`` marks a point inside the transaction (SQL ``SAVEPOINT``, which SQLite and
    PostgreSQL both have): leaving its block normally keeps what was done inside (``RELEASE``,
    still uncommitted, part of the enclosing transaction); leaving it with an exception undoes
    only that (``ROLLBACK TO`` + ``RELEASE``) and re-raises, and the transaction goes on. That is
    how the inbox commits a batch of events once while a failing handler loses only its own
    event's effects. After a failed statement PostgreSQL refuses every further statement until
    ``ROLLBACK TO``, so an implementation there must roll back on the way out, as this contract
    says. If the database has ended the whole transaction (SQLite rolls back by itself on a full
    disk or an I/O error), leaving the savepoint raises StoreUnavailable: the caller must not
    go on as if the work before it were still pending.
    """

    def savepoint(self) -> AbstractAsyncContextManager[Transaction]: ...


class Store(Repositories, Protocol):
    """The whole store. Each repository call on it is its own transaction.

    ``transaction()`` groups calls atomically and commits them once, durably (the inbox commits
    a whole relayed batch, each event with its handlers' effects). Inside it use only the
    yielded repositories: a call on the Store itself from the task holding the transaction
    raises NestedTransaction instead of deadlocking.
    """

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers (``/readyz``)."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...
