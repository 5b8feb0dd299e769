"""Counting a chaos run: what WeChat sent and was answered, what each tier holds, what went wrong.

The inputs are facts read after the run, never the tiers' own claims about themselves:

* the emulator's pushes (one per logical callback; its attempts are WeChat's retries with the
  identical query and body) — *sent*, *answered* (a 200 from the gateway);
* the gateway's spool rows (its SQLite file, read-only) — *spooled*, *relayed* (acknowledged);
* the sidecar's inbox rows (its SQLite file, read-only) — *processed*;
* the sidecar's log, one ``event processed`` line per committed run of the handlers (written
  after the commit) — what the handlers saw, so a duplicate shows up even though the inbox's
  primary key could never hold one.

*Lost* is an answered event the sidecar never processed: the one outcome WeChat would not
repair, since it does not retry an answered callback. An unanswered one may or may not have
been processed (the gateway may have committed it and died before answering); WeChat retries it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HANDLED = "event processed"  # sidecar.relay.inbox logs it after the transaction committed


@dataclass(frozen=True)
class Sent:
    """One logical callback and how WeChat fared with it."""

    event_id: str
    answered: bool  # some attempt got a 200
    attempts: int
    answer_s: float | None  # from the first attempt's start to the 200, retries included
    timeouts: int = 0  # attempts WeChat gave up on after its 5 s


@dataclass(frozen=True)
class Observed:
    """What the tiers hold once the relay has drained and everything has stopped."""

    spool: dict[str, tuple[str, int]]  # event id → (state: pending | leased | acked, relay hand-outs)
    inbox: list[tuple[str, str | None]]  # (event id, handler error) per row
    handled: Counter[str]  # event id → sidecar log lines saying its handlers ran and committed
    repeats: int = 0  # callbacks the gateway answered as repeats of a spooled event (its log)


@dataclass(frozen=True)
class Tally:
    sent: int
    attempts: int
    retried: int
    timed_out: int
    answered: int
    unanswered: int
    spooled: int
    relayed: int
    handed_out_again: int
    repeats: int
    processed: int
    processed_unanswered: int
    duplicates: int
    lost: int
    answered_not_spooled: int
    unexpected: int
    handler_errors: int
    answer_p50_s: float | None
    answer_p99_s: float | None
    answer_max_s: float | None
    lost_ids: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every answered event processed exactly once, and nothing processed that was not sent."""
        return self.lost == 0 and self.duplicates == 0 and self.unexpected == 0 and self.answered_not_spooled == 0

    def rows(self) -> list[tuple[str, int | str, str]]:
        return [
            ("sent", self.sent, f"callbacks (logical events; {self.attempts} HTTP attempts, {self.retried} retried)"),
            ("  attempts timed out", self.timed_out, "no answer within WeChat's 5 s, so it retried"),
            ("answered", self.answered, "a 200 from the gateway within WeChat's 5 s"),
            ("unanswered", self.unanswered, "no 200 after every retry (WeChat would show an error)"),
            ("spooled", self.spooled, "rows in the gateway's spool"),
            ("relayed", self.relayed, "spool rows acknowledged by the sidecar"),
            ("  handed out again", self.handed_out_again, "relayed more than once (a dead sidecar, a lost ack)"),
            ("WeChat repeats absorbed", self.repeats, "retries the gateway answered without spooling again"),
            ("processed", self.processed, "rows in the sidecar's inbox"),
            ("  of them unanswered", self.processed_unanswered, "committed, but the gateway died before answering"),
            ("handler errors", self.handler_errors, "inbox rows recorded with an error"),
            ("duplicates", self.duplicates, "extra processings of an event (inbox rows + handler log lines)"),
            ("lost", self.lost, "answered but never processed"),
            ("answered, not spooled", self.answered_not_spooled, "answered before being committed"),
            ("unexpected", self.unexpected, "processed events nobody sent"),
            ("answer time p50/p99/max", _times(self), "seconds, first attempt to the 200"),
        ]

    def table(self) -> str:
        width = max(len(name) for name, _, _ in self.rows())
        lines = [f"  {name:<{width}}  {value!s:>16}  {note}" for name, value, note in self.rows()]
        if self.lost_ids:
            lines.append(f"  lost, first few: {', '.join(self.lost_ids[:5])}")
        if self.duplicate_ids:
            lines.append(f"  duplicated, first few: {', '.join(self.duplicate_ids[:5])}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        data = {name: value for name, value, _ in self.rows()}
        data["ok"] = self.ok
        return data


def _times(tally: Tally) -> str:
    values = (tally.answer_p50_s, tally.answer_p99_s, tally.answer_max_s)
    return "/".join("-" if v is None else f"{v:.2f}" for v in values)


def _percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def tally(sent: Sequence[Sent], observed: Observed) -> Tally:
    """Compare what WeChat was told with what the tiers hold."""
    sent_ids = {s.event_id for s in sent}
    answered = {s.event_id for s in sent if s.answered}
    inbox_ids = Counter(event_id for event_id, _ in observed.inbox)
    processed = set(inbox_ids)
    extra = {i: n - 1 for i, n in inbox_ids.items() if n > 1}
    for event_id, lines in observed.handled.items():
        if lines > 1:
            extra[event_id] = max(extra.get(event_id, 0), lines - 1)
    lost = sorted(answered - processed)
    times = sorted(s.answer_s for s in sent if s.answer_s is not None)
    return Tally(
        sent=len(sent),
        attempts=sum(s.attempts for s in sent),
        retried=sum(1 for s in sent if s.attempts > 1),
        timed_out=sum(s.timeouts for s in sent),
        answered=len(answered),
        unanswered=len(sent_ids - answered),
        spooled=len(observed.spool),
        relayed=sum(1 for state, _ in observed.spool.values() if state == "acked"),
        handed_out_again=sum(1 for _, handouts in observed.spool.values() if handouts > 1),
        repeats=observed.repeats,
        processed=len(processed),
        processed_unanswered=len((processed & sent_ids) - answered),
        duplicates=sum(extra.values()),
        lost=len(lost),
        answered_not_spooled=len(answered - set(observed.spool)),
        unexpected=len(processed - sent_ids),
        handler_errors=sum(1 for _, error in observed.inbox if error is not None),
        answer_p50_s=_percentile(times, 0.50),
        answer_p99_s=_percentile(times, 0.99),
        answer_max_s=times[-1] if times else None,
        lost_ids=lost,
        duplicate_ids=sorted(extra),
    )


def handled_counts(lines: Iterable[str]) -> Counter[str]:
    """Per event id, the log lines saying the sidecar's handlers ran for it and committed."""
    counts: Counter[str] = Counter()
    for line in lines:
        if '"event_id"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by SIGKILL
        if isinstance(entry, dict) and entry.get("msg") == HANDLED and isinstance(entry.get("event_id"), str):
            counts[entry["event_id"]] += 1
    return counts


def read_handled(log_path: Path) -> Counter[str]:
    with log_path.open(encoding="utf-8", errors="replace") as log:
        return handled_counts(log)


def count_repeats(lines: Iterable[str]) -> int:
    """Callbacks the gateway logged as answered repeats (WeChat's retries of a spooled event)."""
    repeats = 0
    for line in lines:
        if '"duplicate"' in line and '"callback answered"' in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            repeats += isinstance(entry, dict) and entry.get("outcome") == "duplicate"
    return repeats


def read_repeats(log_path: Path) -> int:
    with log_path.open(encoding="utf-8", errors="replace") as log:
        return count_repeats(log)


__all__ = [
    "HANDLED",
    "Observed",
    "Sent",
    "Tally",
    "count_repeats",
    "handled_counts",
    "read_handled",
    "read_repeats",
    "tally",
]
