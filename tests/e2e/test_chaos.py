"""Chaos, the short version of ``make chaos``: callbacks in every mode while tiers are SIGKILLed.

The e2e tests run the real harness (bench.chaos) against real processes: the emulator pushes
callbacks as WeChat does (5 s per attempt, identical retries) to three MP accounts (plain,
compat, safe) and a WeCom corp while the sidecar is killed twice and the gateway once. Every
event WeChat got a 200 for must be in the sidecar's inbox exactly once.

The counting itself is specified first, without processes: a harness that could not see a lost
or a duplicated event would pass any system.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from bench.chaos import ChaosOptions, main, run_chaos
from bench.chaos_load import schedule
from bench.chaos_tally import Observed, Sent, handled_counts, tally


def sent(event_id: str, *, answered: bool = True, attempts: int = 1) -> Sent:
    return Sent(event_id, answered, attempts, 0.1 if answered else None)


def observed(inbox: list[str], handled: list[str] | None = None, spool: list[str] | None = None) -> Observed:
    ids = spool if spool is not None else inbox
    return Observed(
        spool={i: ("acked", 1) for i in ids},
        inbox=[(i, None) for i in inbox],
        handled=Counter(handled if handled is not None else inbox),
    )


def test_tally_answered_event_missing_from_inbox_counts_as_lost() -> None:
    result = tally([sent("evt_a"), sent("evt_b")], observed(["evt_a"], spool=["evt_a", "evt_b"]))

    assert (result.lost, result.lost_ids, result.ok) == (1, ["evt_b"], False)


def test_tally_event_handled_twice_counts_as_duplicate() -> None:
    result = tally([sent("evt_a"), sent("evt_b")], observed(["evt_a", "evt_b"], handled=["evt_a", "evt_b", "evt_a"]))

    assert (result.duplicates, result.duplicate_ids, result.ok) == (1, ["evt_a"], False)


def test_tally_unanswered_event_never_processed_is_not_lost() -> None:
    result = tally([sent("evt_a"), sent("evt_b", answered=False, attempts=4)], observed(["evt_a"]))

    assert (result.sent, result.answered, result.unanswered, result.attempts) == (2, 1, 1, 5)
    assert (result.lost, result.ok) == (0, True)


def test_tally_answered_event_missing_from_spool_fails_the_run() -> None:
    result = tally([sent("evt_a")], observed(["evt_a"], spool=[]))

    assert (result.answered_not_spooled, result.ok) == (1, False)


def test_tally_processed_event_nobody_sent_fails_the_run() -> None:
    result = tally([sent("evt_a")], observed(["evt_a", "evt_x"]))

    assert (result.unexpected, result.ok) == (1, False)


def test_handled_counts_reads_processed_lines_and_skips_a_line_cut_by_sigkill() -> None:
    lines = [
        '{"msg": "event processed", "event_id": "evt_a"}',
        '{"msg": "relay pull failed", "event_id": "evt_b"}',
        '{"msg": "event processed", "event_id": "evt_a"}',
        '{"msg": "event processed", "event_',
    ]

    assert handled_counts(lines) == Counter({"evt_a": 2})


def test_schedule_same_seed_same_kills_spread_over_the_run() -> None:
    first = schedule(1000, random.Random(3), sidecar_kills=4, gateway_kills=1)

    assert first == schedule(1000, random.Random(3), sidecar_kills=4, gateway_kills=1)
    assert sorted(f.tier for f in first) == ["gateway"] + ["sidecar"] * 4
    assert [f.at for f in first] == sorted(f.at for f in first)
    assert 100 <= first[0].at and first[-1].at <= 900


def test_chaos_cli_non_empty_workdir_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gateway-spool.sqlite3").write_bytes(b"")

    assert main(["--quick", "--workdir", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.e2e
async def test_chaos_push_sidecar_killed_twice_gateway_once_every_answered_event_processed_once(
    tmp_path: Path,
) -> None:
    options = ChaosOptions(events=600, seed=11, sidecar_kills=2, gateway_kills=1, drain_timeout_s=60)

    result = await run_chaos(options, tmp_path / "chaos")

    counts = result.tally
    assert (counts.lost, counts.duplicates, counts.unexpected) == (0, 0, 0), result.report()
    assert result.drained and counts.relayed == counts.spooled, result.report()
    assert counts.sent == 600 and counts.processed >= counts.answered, result.report()
    assert [f.tier for f in result.faults].count("sidecar") == 2 and len(result.faults) == 3


@pytest.mark.e2e
async def test_chaos_pull_sidecar_killed_twice_gateway_once_every_answered_event_processed_once(
    tmp_path: Path,
) -> None:
    options = ChaosOptions(events=300, seed=12, relay_mode="pull", sidecar_kills=2, gateway_kills=1, drain_timeout_s=60)

    result = await run_chaos(options, tmp_path / "chaos")

    counts = result.tally
    assert (counts.lost, counts.duplicates, counts.unexpected) == (0, 0, 0), result.report()
    assert result.drained and counts.relayed == counts.spooled, result.report()
    assert counts.sent == 300 and counts.processed >= counts.answered, result.report()
    assert len(result.faults) == 3
