"""The spool's SQLite side: the schema and one method per transaction.

Every method here is synchronous and runs on the spool's single dedicated thread (see
``gateway.spool.queue``), so each call is one whole transaction that no other coroutine can interleave
statements into. Nothing here knows about asyncio, futures or metrics.

Durability is spent where it buys something: a batch of new events commits with
``synchronous=FULL`` (the WAL is fsynced before ``commit()`` returns to WeChat's request); leases,
releases and acks commit with ``synchronous=NORMAL``. Losing one of those in a power cut only
means an event is relayed again, which the sidecar's inbox absorbs (it dedupes on the id), and
leases are reset on every open anyway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    account     TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at REAL NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'acked')),
    lease_until REAL NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    acked_at    REAL,
    reply       TEXT
);
CREATE INDEX IF NOT EXISTS events_queue ON events(seq) WHERE state != 'acked';
CREATE INDEX IF NOT EXISTS events_due ON events(lease_until) WHERE state != 'acked';
CREATE INDEX IF NOT EXISTS events_acked ON events(acked_at) WHERE state = 'acked';
CREATE TABLE IF NOT EXISTS dedupe_keys (
    id         TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_expiry ON dedupe_keys(expires_at);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

# Ready = not acknowledged and not leased/delayed past now; the partial index keeps this an
# ordered walk over unacknowledged rows only, however many acknowledged rows the table holds.
# One statement leases the whole batch (RETURNING gives the rows as updated: attempts included).
_LEASE = (
    "UPDATE events SET state = 'leased', lease_until = ?, attempts = attempts + 1 WHERE seq IN ("
    "SELECT seq FROM events INDEXED BY events_queue WHERE state != 'acked' AND lease_until <= ? ORDER BY seq LIMIT ?"
    ") RETURNING seq, id, body, attempts"
)
# Acknowledgements without a reply (nearly all) are marked by one statement per ID_CHUNK ids. The
# id list is always padded to ID_CHUNK with repeats of its first id, so the SQL text never
# changes and stays prepared in the connection's statement cache.
ID_CHUNK = 100
_ACK_SILENT = (
    "UPDATE events SET state = 'acked', acked_at = ?, lease_until = 0 "  # noqa: S608 (formats in only "?"s)
    f"WHERE id IN ({','.join('?' * ID_CHUNK)}) AND state != 'acked' RETURNING id, account"
)
_ACK_REPLY = (
    "UPDATE events SET state = 'acked', acked_at = ?, reply = ?, lease_until = 0 "
    "WHERE id = ? AND state != 'acked' RETURNING account"
)


class NewRow(NamedTuple):
    id: str
    account: str
    body: str
    received_at: float


class LeasedRow(NamedTuple):
    id: str
    body: str
    attempts: int  # including this lease


class AckedRow(NamedTuple):
    id: str
    account: str


class Lookup(NamedTuple):
    acked: bool
    reply: str | None


class SpoolDb:
    """One SQLite connection in WAL mode; use only from the thread that opened it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._synchronous = ""

    @classmethod
    def open(cls, path: Path) -> SpoolDb:
        """Open or create the spool; pending work from a previous process becomes ready again."""
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        try:
            db = cls(conn)
            db._prepare()
        except BaseException:
            conn.close()
            raise
        return db

    def _prepare(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal_mode WAL refused (got {mode})")
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"spool schema version {version} is not {SCHEMA_VERSION}")
        with self._transaction(durable=True):
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            # Leases belong to the process that granted them; after a restart, relay at once.
            self._conn.execute(
                "UPDATE events SET state = 'pending', lease_until = 0 WHERE state != 'acked' AND lease_until > 0"
            )

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self, *, durable: bool) -> Iterator[None]:
        wanted = "FULL" if durable else "NORMAL"
        if self._synchronous != wanted:
            self._conn.execute(f"PRAGMA synchronous = {wanted}")
            self._synchronous = wanted
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def insert(self, rows: Sequence[NewRow]) -> list[bool]:
        """One durable transaction for a whole group; True where the row is new.

        A repeat (already spooled, or pruned but its dedupe key still kept) adds nothing.
        """
        fresh: list[bool] = []
        with self._transaction(durable=True):
            for row in rows:
                if self._conn.execute("SELECT 1 FROM dedupe_keys WHERE id = ?", (row.id,)).fetchone():
                    fresh.append(False)
                    continue
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO events (id, account, body, received_at) VALUES (?, ?, ?, ?)", row
                )
                fresh.append(cursor.rowcount == 1)
        return fresh

    def lease(self, limit: int, now: float, until: float) -> list[LeasedRow]:
        """Hand out up to ``limit`` ready events, oldest first, hidden from others until ``until``."""
        with self._transaction(durable=False):
            rows = self._conn.execute(_LEASE, (until, now, limit)).fetchall()
        rows.sort()  # RETURNING does not promise an order; the relay hands events out oldest first
        return [LeasedRow(event_id, body, attempts) for _, event_id, body, attempts in rows]

    def release(self, ids: Sequence[str], ready_at: float) -> None:
        """Give leased events back, to be handed out again from ``ready_at`` on."""
        with self._transaction(durable=False):
            self._conn.executemany(
                "UPDATE events SET state = 'pending', lease_until = ? WHERE id = ? AND state = 'leased'",
                [(ready_at, event_id) for event_id in ids],
            )

    def ack(self, replies: Sequence[tuple[str, str | None]], now: float) -> tuple[list[AckedRow], float | None]:
        """Mark events acknowledged with their reply JSON.

        Returns the events not acknowledged before and, from the same snapshot, the
        ``received_at`` of the oldest event still unacknowledged.
        """
        silent = [event_id for event_id, reply in replies if reply is None]
        acked: list[AckedRow] = []
        with self._transaction(durable=False):
            for start in range(0, len(silent), ID_CHUNK):
                chunk = silent[start : start + ID_CHUNK]
                padded = chunk + chunk[:1] * (ID_CHUNK - len(chunk))
                marked = self._conn.execute(_ACK_SILENT, (now, *padded))
                acked += [AckedRow(event_id, account) for event_id, account in marked]
            for event_id, reply in replies:
                if reply is not None:
                    row = self._conn.execute(_ACK_REPLY, (now, reply, event_id)).fetchone()
                    if row is not None:
                        acked.append(AckedRow(event_id, row[0]))
            oldest = self.oldest_unacked()
        return acked, oldest

    def lookup(self, event_id: str) -> Lookup | None:
        row = self._conn.execute("SELECT state, reply FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return Lookup(row[0] == "acked", row[1])

    def contains(self, event_id: str) -> bool:
        return bool(
            self._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM events WHERE id = ?) OR EXISTS (SELECT 1 FROM dedupe_keys WHERE id = ?)",
                (event_id, event_id),
            ).fetchone()[0]
        )

    def depth(self) -> int:
        query = "SELECT COUNT(*) FROM events INDEXED BY events_queue WHERE state != 'acked'"
        return int(self._conn.execute(query).fetchone()[0])

    def oldest_unacked(self) -> float | None:
        """``received_at`` of the oldest unacknowledged event: the first entry of the queue index."""
        row = self._conn.execute(
            "SELECT received_at FROM events INDEXED BY events_queue WHERE state != 'acked' ORDER BY seq LIMIT 1"
        ).fetchone()
        return None if row is None else float(row[0])

    def next_due(self, now: float) -> float | None:
        """When the earliest leased or delayed event becomes ready again (None when none is waiting)."""
        row = self._conn.execute(
            "SELECT MIN(lease_until) FROM events WHERE state != 'acked' AND lease_until > ?", (now,)
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def prune_events(self, acked_before: float, keep_s: float, now: float, limit: int) -> int:
        """Delete up to ``limit`` events acknowledged before ``acked_before``, keeping their dedupe keys.

        A key is kept until ``acked_at + keep_s``: the row's body goes, the id keeps deduping.
        """
        with self._transaction(durable=False):
            rows = self._conn.execute(
                "SELECT seq, id, acked_at FROM events INDEXED BY events_acked "
                "WHERE state = 'acked' AND acked_at <= ? ORDER BY acked_at LIMIT ?",
                (acked_before, limit),
            ).fetchall()
            self._conn.executemany(
                "INSERT OR REPLACE INTO dedupe_keys (id, expires_at) VALUES (?, ?)",
                [(event_id, acked_at + keep_s) for _, event_id, acked_at in rows if acked_at + keep_s > now],
            )
            self._conn.executemany("DELETE FROM events WHERE seq = ?", [(seq,) for seq, _, _ in rows])
        return len(rows)

    def prune_keys(self, now: float, limit: int) -> int:
        """Forget up to ``limit`` dedupe keys whose keep span is over."""
        with self._transaction(durable=False):
            cursor = self._conn.execute(
                "DELETE FROM dedupe_keys WHERE id IN "
                "(SELECT id FROM dedupe_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
                (now, limit),
            )
        return max(cursor.rowcount, 0)

    def probe(self, now: float) -> None:
        """A tiny durable write: proves the file, the lock and the fsync path all still work."""
        with self._transaction(durable=True):
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?)", (repr(now),))
