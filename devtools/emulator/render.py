"""What a phone displays for a message: WeChat's 2023 template rules and WeCom's size limits.

Since 2023-05-04 WeChat no longer shows a template's ``first`` and ``remark``, ignores colours,
strips emoji, allows no line breaks and truncates each field by its type. WeCom truncates text
(2048 bytes) and textcard title/description (128/512 bytes) silently.
"""

from __future__ import annotations

import re
from typing import Any

from devtools.emulator.config import Template

HIDDEN_FIELDS = frozenset({"first", "remark"})
TYPE_LIMITS = {
    "thing": 20,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "const": 20,
    "phrase": 5,
    "name": 10,
    "number": 32,
    "letter": 32,
    "symbol": 5,
}
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
_BREAKS = re.compile(r"\r\n|\r|\n")


def field_type(key: str) -> str:
    """``thing3`` → ``thing``: template keys carry their type as a prefix."""
    return key.rstrip("0123456789")


def _clean(value: str, key: str) -> str:
    value = _BREAKS.sub(" ", _EMOJI.sub("", value))
    limit = TYPE_LIMITS.get(field_type(key))
    return value[:limit] if limit else value


def render_template(template: Template, data: dict[str, Any], url: str | None) -> tuple[str, dict[str, Any]]:
    """The phone's text for a template message, and the structured detail behind it."""
    shown = []
    for key, label in template.fields:
        if key in HIDDEN_FIELDS:
            continue
        value = data.get(key, {}).get("value", "")
        shown.append({"key": key, "label": label, "value": _clean(str(value), key)})
    lines = [template.title] if template.title else []
    lines += [f"{f['label']}: {f['value']}" for f in shown]
    if url:
        lines.append(f"详情: {url}")
    detail = {
        "template_id": template.template_id,
        "title": template.title,
        "fields": shown,
        "url": url or "",
        "hidden": sorted(k for k in data if k in HIDDEN_FIELDS),
        "unknown_keys": sorted(k for k in data if k not in dict(template.fields)),
    }
    return "\n".join(lines), detail


def truncate_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, never splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
