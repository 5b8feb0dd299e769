"""The backup command docs/OPERATIONS.md gives, run as written against a spool the gateway's own
code holds open: the copy opens as a spool with every pending event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.prefill import rows
from gateway.spool.db import SpoolDb
from tests.ops.prom import OPERATIONS

EVENTS = 50


def documented_backup_command() -> str:
    """The one-liner under "Backup and restore" (the line that starts ``python3 -c``)."""
    lines = [line for line in OPERATIONS.read_text(encoding="utf-8").splitlines() if line.startswith("python3 -c ")]
    assert len(lines) == 1, lines
    return lines[0].replace("python3 ", f"{sys.executable} ", 1)


def test_backup_command_copies_a_spool_held_open_with_every_pending_event(tmp_path: Path) -> None:
    live = tmp_path / "spool.sqlite3"
    holder = SpoolDb.open(live)  # as a running gateway: connection open, new rows still in the WAL
    try:
        holder.insert(list(rows(EVENTS)))
        copy = tmp_path / "backup" / "spool.sqlite3"
        copy.parent.mkdir()
        env = {**os.environ, "DB": str(live), "COPY": str(copy)}

        result = subprocess.run(["bash", "-c", documented_backup_command()], env=env, capture_output=True, text=True)

        assert result.returncode == 0, result.stderr
    finally:
        holder.close()
    restored = SpoolDb.open(copy)
    try:
        assert restored.depth() == EVENTS
    finally:
        restored.close()
