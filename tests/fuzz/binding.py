"""What the binding fuzz suites share: their hypothesis profile, hostile ids and text, the verdicts.

The binding rig (tests/sidecar/binding/conftest.py) is the sidecar app over HTTP with WeChat
scripted; its browser keeps cookies. Each property runs ``FUZZ_EXAMPLES`` examples, 60 unless
the variable says otherwise (an example here is a page render, a QR code or a SQLite commit).
"""

from __future__ import annotations

import os
import sqlite3
import unicodedata
from typing import Any

from aiohttp import ClientResponse
from hypothesis import settings
from hypothesis import strategies as st

from sidecar.keys import CONFIG
from sidecar.store import Binding
from sidecar.wechat import ids
from tests.fuzz.strategies import SPECIAL_TEXT, header_values, xml_text
from tests.fuzz.support import FUZZ, is_clear_reason
from tests.sidecar.binding.conftest import Rig

BINDING_FUZZ = settings(FUZZ, max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")))

# What the review fed the binding paths, and its relatives: fan-outs, terminal and spreadsheet
# injection, path tricks, and text no id may hold.
HOSTILE = (
    "@all", "@ALL", " @all", "mallory,@all", "carol|bob", "a;b", "a b", "\x1b[31mred", "\x1b]0;t\x07", "a\tb",
    "a\nb", "a\r\nb", "a\x00b", "\x9b2J", "\u202eevil", '=HYPERLINK("http://evil.example/")', "+cmd", "-2+3",
    "@SUM(1)", "../x", "%2e%2e", "x" * 65, "x" * 2000, "", " ", "null", "undefined", "<script>",
)
hostile_text = st.sampled_from(HOSTILE) | xml_text | st.text(max_size=80) | st.tuples(
    st.text(max_size=20), st.sampled_from(HOSTILE), st.text(max_size=20)
).map("".join)
# What aiohttp's client will put in a header (no control characters).
header_text = header_values | hostile_text.filter(lambda t: not any(unicodedata.category(c) == "Cc" for c in t))
id_like = st.text(st.sampled_from("abcXYZ019_-.@|,; \t\x1b\x00=+(") | st.sampled_from(SPECIAL_TEXT), max_size=70)
wx_ids = st.sampled_from(HOSTILE) | id_like | hostile_text


def assert_page(response: ClientResponse, body: str) -> None:
    """A binding page or notice: never a 5xx, always HTML, no traceback."""
    assert response.status < 500, f"HTTP {response.status}: {body[:300]!r}"
    assert response.content_type == "text/html", response.content_type
    assert "Traceback" not in body


def assert_console_answer(status: int, body: dict[str, Any], *, state: bool = False) -> None:
    """BlueKing's console JSON: ``result`` a boolean; a refusal has one clear line; no 5xx but 503.

    ``state``: the answer is ``get_bind_status``'s HTTP 200, where ``result: false`` means "not
    bound (yet)", a state rather than a refusal, with a message only after a failed attempt.
    """
    assert status < 500 or status == 503, f"HTTP {status}: {body}"
    assert isinstance(body.get("result"), bool), body
    if body["result"] is False and (not state or "message" in body):
        assert isinstance(body.get("message"), str) and is_clear_reason(body["message"]), body


def effects(rig: Rig) -> tuple[object, ...]:
    """What a refusal must leave alone: every row of the binding tables, read off the real file."""
    with sqlite3.connect(rig.app[CONFIG].store.path) as conn:
        return tuple(
            tuple(conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall())
            for table in ("bindings", "binding_sessions", "binding_links")
        )


def stored_ids_follow_the_rules(bindings: list[Binding], kinds: dict[str, str]) -> bool:
    return all(ids.problem(kinds[b.account], b.wx_id) is None for b in bindings)  # type: ignore[arg-type]


__all__ = [
    "BINDING_FUZZ",
    "HOSTILE",
    "assert_console_answer",
    "assert_page",
    "effects",
    "header_text",
    "hostile_text",
    "stored_ids_follow_the_rules",
    "wx_ids",
]
