"""Rows to records and back, the same for every engine: one home for each record's column order.

Both engines return rows as sequences in the column order named here, so the repositories of
SQLite and PostgreSQL share these builders instead of each decoding JSON and times its own way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from common.config import Secret
from contract import parse_reply
from sidecar.store.interfaces import AuditRecord, Binding, BindingAttempt, BindingLink, InboxRecord, TokenRecord

Row = Sequence[Any]

TOKEN_COLUMNS = "key, token, expires_at, fetched_at, version"  # noqa: S105 - column names
INBOX_COLUMNS = "event_id, account, envelope, received_at, processed_at, reply, error"
BINDING_COLUMNS = "account, username, wx_id, active, bound_at, updated_at"
SESSION_COLUMNS = "id, account, username, kind, scene, created_at, expires_at, status, wx_id, message, finished_at"
LINK_COLUMNS = "token_hash, username, account, created_at, expires_at, used_at"
AUDIT_COLUMNS = "request_id, at, app_code, account, recipients, outcome, errcode, msgid, detail, body"


def dumps(obj: Any) -> str:
    """Compact JSON that keeps Chinese text readable in the database."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def token(row: Row) -> TokenRecord:
    return TokenRecord(row[0], Secret(row[1]), float(row[2]), float(row[3]), int(row[4]))


def inbox_record(row: Row) -> InboxRecord:
    reply = parse_reply(json.loads(row[5])) if row[5] else None
    return InboxRecord(row[0], row[1], json.loads(row[2]), float(row[3]), row[4], reply, row[6])


def binding(row: Row) -> Binding:
    return Binding(row[0], row[1], row[2], bool(row[3]), float(row[4]), float(row[5]))


def session(row: Row) -> BindingAttempt:
    return BindingAttempt(
        row[0], row[1], row[2], row[3], row[4], float(row[5]), float(row[6]), row[7], row[8], row[9], row[10]
    )


def session_values(s: BindingAttempt) -> tuple[object, ...]:
    """The values of ``SESSION_COLUMNS``, in order, for an INSERT."""
    return (s.id, s.account, s.username, s.kind, s.scene, s.created_at, s.expires_at, s.status, s.wx_id, s.message,
            s.finished_at)


def link(row: Row) -> BindingLink:
    return BindingLink(row[0], row[1], row[2], float(row[3]), float(row[4]), row[5])


def audit_values(entry: AuditRecord) -> tuple[object, ...]:
    """The values of ``AUDIT_COLUMNS``, in order, for an INSERT."""
    return (entry.request_id, entry.at, entry.app_code, entry.account, dumps(list(entry.recipients)), entry.outcome,
            entry.errcode, entry.msgid, dumps(entry.detail), entry.body)


def audit(row: Row) -> AuditRecord:
    return AuditRecord(
        row[0], float(row[1]), row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], json.loads(row[8]), row[9]
    )
