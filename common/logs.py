"""JSON logs, one object per line, with the request id of the HTTP request being served.

Secrets never reach this module as values (config holds them as ``Secret``); user ids do, and
are shortened by :func:`short_id` before they are logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}


def new_request_id() -> str:
    return secrets.token_hex(16)


def short_id(value: str | None) -> str:
    """An openid/userid shortened so logs correlate without holding the full identifier."""
    if not value:
        return ""
    if len(value) <= 8:
        return value[:2] + "…"
    return value[:4] + "…" + value[-4:]


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; extra fields passed with ``extra=`` become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "info") -> None:
    """Send JSON lines to stderr; called once by each tier's ``__main__``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
