"""What a WeChat id may look like: one rule for every path that produces one.

An id reaches the binding table from a CSV import, a scan event or a WeCom login, and reaches
WeChat as a send's ``receiver``. WeCom reads ``|`` in ``touser`` as a separator and ``@all`` as
the whole company, so a stored ``eve|bob`` or ``mallory,@all`` would turn a later send by
username into a send to other people. Each path therefore accepts only the shape its kind of id
has, and refuses the rest with one line saying why:

* MP openid — 1–64 letters, digits, ``_`` and ``-``, the first a letter or digit. WeChat's are
  28 such characters starting with ``o`` (``oyOR…f0rs``; the emulator's too), but neither WeChat
  nor wechat-protocol.md states the length, so it is not pinned: the character set is what keeps
  separators out, and the first character keeps a cell from reading as a spreadsheet formula.
* WeCom userid — 1–64 letters, digits, ``_ - . @``, the first a letter or digit (WeCom's own
  rule for a member's UserID, which is why ``@all`` can never be one).

Control characters are refused in both, and :func:`escaped` is how the admin CLI shows text it
did not write (usernames, ids stored before these rules): a terminal gets no escape sequence.
"""

from __future__ import annotations

import json
import re

from sidecar.config import AccountKind
from sidecar.errors import InvalidWxId

MAX_ID_CHARS = 64
SHOWN_CHARS = 40
OPENID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
USERID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
SEPARATORS = frozenset("|,; ")
SHAPES: dict[AccountKind, tuple[re.Pattern[str], str]] = {
    "mp": (OPENID_RE, "is not an MP openid (letters, digits, _ and -)"),
    "wecom": (USERID_RE, "is not a WeCom userid (letters, digits, _ - . @, the first a letter or digit)"),
}


def problem(kind: AccountKind, wx_id: str) -> str | None:
    """Why ``wx_id`` is not an id of ``kind`` (a phrase that follows the id), or None when it is."""
    if not wx_id:
        return "is empty"
    if wx_id.strip().lower() == "@all":
        return "is not accepted (the whole company): name the recipients"
    if any(not c.isprintable() for c in wx_id):
        return "holds a control character"
    if any(c in SEPARATORS for c in wx_id):
        return "holds a separator (| , ; or a space)"
    if len(wx_id) > MAX_ID_CHARS:
        return f"is longer than {MAX_ID_CHARS} characters"
    pattern, reason = SHAPES[kind]
    return None if pattern.fullmatch(wx_id) else reason


def check(kind: AccountKind, wx_id: str) -> str:
    """``wx_id`` itself when it is an id of ``kind``; else :class:`InvalidWxId` with one line."""
    reason = problem(kind, wx_id)
    if reason is not None:
        raise InvalidWxId(f"{shown(wx_id)} {reason}")
    return wx_id


def shown(text: str) -> str:
    """Text quoted for a message: at most 40 characters, control characters escaped."""
    cut = text[:SHOWN_CHARS] + ("…" if len(text) > SHOWN_CHARS else "")
    return f"'{escaped(cut)}'"


def escaped(text: str) -> str:
    """``text`` with every character a terminal would not simply print escaped JSON-style (``\\u001b``)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


__all__ = ["MAX_ID_CHARS", "check", "escaped", "problem", "shown"]
