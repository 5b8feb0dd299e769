"""Reading what the tiers logged, the way an operator's log pipeline would receive it.

Each record is rendered by the tiers' own ``common.logs.JsonFormatter``, so values passed as
``extra=`` fields are searched too, not only the message. Records of ``aiohttp.access`` are left
out: that is the test server's access log, which both tiers switch off (``access_log=None``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from common.logs import JsonFormatter

_FORMAT = JsonFormatter()


def rendered(records: Iterable[logging.LogRecord]) -> str:
    """Every record as its JSON line (ensure_ascii off, so text is searchable as written)."""
    return "\n".join(_FORMAT.format(r) for r in records if r.name != "aiohttp.access")


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets whose value occurs in ``text``."""
    return sorted(name for name, value in secrets.items() if value and value in text)
