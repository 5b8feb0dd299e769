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
from types import MappingProxyType
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# What json.dumps(ensure_ascii=False) leaves raw but line-oriented log shippers split on: the C1
# controls (U+0080-U+009F, NEL U+0085 among them) and the Unicode line and paragraph separators.
# Escaped as \uXXXX they stay the same JSON string (finding F7, docs/SECURITY.md).
_LINE_BREAKERS = MappingProxyType({code: f"\\u{code:04x}" for code in (*range(0x80, 0xA0), 0x2028, 0x2029)})

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
    """Render a record as one JSON line; extra fields passed with ``extra=`` become keys.

    One line whatever a value holds: request paths and headers reach the log, and a raw U+2028
    in them would cut the record in two for a shipper that splits on Unicode line breaks.
    """

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
        return json.dumps(entry, ensure_ascii=False, default=str).translate(_LINE_BREAKERS)


def setup_logging(level: str = "info") -> None:
    """Send JSON lines to stderr; called once by each tier's ``__main__``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
