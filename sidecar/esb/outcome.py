"""What a send achieved, and how BlueKing would have said it.

``result``/``code``/``message`` follow BlueKing (bk-compat.md): success is
``WeChat message sending succeeded``; any failed recipient makes the answer
``WeChat message sending failed, …``; usernames that could not be mapped make an otherwise
successful send ``Some users failed to send wechat message. …``. Codes:

* 1306000 — generic failure, including recipients WeChat refused (``invaliduser``, 81013,
  40003, 43004): the caller's list is wrong, not WeChat;
* 1306429 — WeChat's frequency limit (45009) and nothing worse;
* 1306201 — any other WeChat error or WeChat unreachable (the errcode is in the message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sidecar.bk.envelope import CODE_FAILED, CODE_OK, CODE_RATE_LIMITED, CODE_THIRD_PARTY
from sidecar.esb.recipients import ALL_FAILED, SOME_FAILED, Resolution

SUCCEEDED = "WeChat message sending succeeded"
FAILED = "WeChat message sending failed"
RECIPIENT_CODES = frozenset({40003, 43004, 81013})
RATE_CODES = frozenset({45009})
MAX_LISTED = 50  # ids named in one message; the rest are counted (data.failed lists them all)
_TRACE = re.compile(r"[\s,;]*(?:rid|hint):\s*\S.*$")  # WeChat's per-call trace id, e.g. " rid: 64b1-…"
Channel = Literal["template", "wecom"]
Outcome = Literal["ok", "partial", "failed", "rejected"]


@dataclass(frozen=True)
class Failure:
    """Recipients one WeChat answer (or one exception) did not reach."""

    receivers: tuple[str, ...]
    errcode: int | None  # None: WeChat was not reached; 0: reported in a successful answer
    errmsg: str
    label: str = ""  # "invalid user" / "unlicensed user" when WeChat named the recipients

    @property
    def reason(self) -> str:
        """``errmsg`` without WeChat's per-call trace id, so alike failures read as one sentence."""
        return _TRACE.sub("", self.errmsg)

    @property
    def kind(self) -> Literal["recipient", "rate", "wechat"]:
        if self.label or self.errcode in RECIPIENT_CODES:
            return "recipient"
        return "rate" if self.errcode in RATE_CODES else "wechat"

    def describe(self) -> str:
        ids = _listed(self.receivers)
        if self.label:
            return f"{self.label}: {ids}"
        if self.errcode in RECIPIENT_CODES:
            return f"invalid user: {ids} (WeChat error {self.errcode}: {self.reason})"
        if self.errcode is None:
            return f"WeChat unreachable: {self.reason} (receivers: {ids})"
        return f"WeChat error {self.errcode}: {self.reason} (receivers: {ids})"


@dataclass
class Delivery:
    channel: Channel
    attempted: tuple[str, ...]
    delivered: list[str] = field(default_factory=list)
    msgids: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    halted: Failure | None = None  # a failure every further call would meet too: stop calling

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)
        if failure.kind != "recipient" and self.halted is None:
            self.halted = failure

    def skip(self, receivers: Sequence[str]) -> None:
        """Report recipients not attempted after ``halted``, with its error (they merge into one sentence)."""
        if self.halted is not None:
            self.failures.append(Failure(tuple(receivers), self.halted.errcode, self.halted.errmsg))

    def first_errcode(self) -> int | None:
        return next((f.errcode for f in self.failures if f.errcode), None)


@dataclass(frozen=True)
class Verdict:
    result: bool
    code: int
    message: str
    data: dict[str, Any] | None
    outcome: Outcome


def judge(delivery: Delivery, resolution: Resolution) -> Verdict:
    """The answer for a send that reached WeChat (or tried to)."""
    note = resolution.note()
    data: dict[str, Any] | None = {"username_check": resolution.username_check()} if resolution.by_username else None
    if not delivery.failures:
        if note:
            return Verdict(False, CODE_FAILED, SOME_FAILED + note, data, "partial")
        return Verdict(True, CODE_OK, SUCCEEDED, data, "ok")
    groups = _merge(delivery.failures)
    message = f"{FAILED}, " + "; ".join(g.describe() for g in groups)
    if note:
        message += ". " + note
    data = {**(data or {}), "sent": len(delivery.delivered), "failed": _failed_rows(delivery.failures)}
    outcome: Outcome = "partial" if delivery.delivered else "failed"
    return Verdict(False, _code(delivery.failures), message, data, outcome)


def nobody(resolution: Resolution) -> Verdict:
    """Every username was bad: BlueKing's NoValidUser answer, nothing sent."""
    return Verdict(
        False, CODE_FAILED, ALL_FAILED + resolution.note(), {"username_check": resolution.username_check()}, "failed"
    )


def refused(code: int, message: str) -> Verdict:
    """The request was refused before anything was sent."""
    return Verdict(False, code, message, None, "rejected")


def _code(failures: Sequence[Failure]) -> int:
    kinds = {f.kind for f in failures}
    if "wechat" in kinds:
        return CODE_THIRD_PARTY
    return CODE_RATE_LIMITED if "rate" in kinds else CODE_FAILED


def _merge(failures: Iterable[Failure]) -> list[Failure]:
    """One group per distinct answer, so 500 openids refused alike read as one sentence."""
    merged: dict[tuple[int | None, str, str], list[str]] = {}
    for failure in failures:
        merged.setdefault((failure.errcode, failure.reason, failure.label), []).extend(failure.receivers)
    return [Failure(tuple(ids), code, msg, label) for (code, msg, label), ids in merged.items()]


def _failed_rows(failures: Iterable[Failure]) -> list[dict[str, Any]]:
    return [{"receiver": r, "errcode": f.errcode, "errmsg": f.label or f.errmsg} for f in failures for r in f.receivers]


def _listed(ids: Sequence[str]) -> str:
    shown = "|".join(ids[:MAX_LISTED])
    return shown if len(ids) <= MAX_LISTED else f"{shown} (+{len(ids) - MAX_LISTED} more)"


__all__ = ["FAILED", "SUCCEEDED", "Delivery", "Failure", "Verdict", "judge", "nobody", "refused"]
