"""``python -m sidecar --config X --check`` on PostgreSQL: the database, in one line, exit 2.

Driven through ``main`` as the CLI runs it, against the session's real server and a closed port.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from sidecar.__main__ import main
from sidecar.store import open_store
from sidecar.store.migrations import MIGRATIONS
from tests.pg import free_port
from tests.sidecar.helpers import write_config
from tests.sidecar.store.conftest import postgres_config

ROOT = Path(__file__).resolve().parents[3]


def config_with_store(tmp_path: Path, url: str) -> Path:
    return write_config(tmp_path, replace={"store": f'[store]\nurl = "{url}"\nconnect_timeout_s = 2\n'})


def check(tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["--config", str(config_with_store(tmp_path, url)), "--check"])
    captured = capsys.readouterr()
    return code, (captured.err or captured.out).splitlines()


async def migrated(url: str, extra_version: int | None = None) -> None:
    await (await open_store(postgres_config(url))).close()
    if extra_version is not None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (extra_version,))


def test_check_closed_port_says_database_unreachable_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = check(tmp_path, f"postgresql://wx:hunter2-secret@127.0.0.1:{free_port()}/wx", capsys)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("store.url: database unreachable: ")
    assert "hunter2" not in lines[0]


def test_check_fresh_database_says_not_migrated_and_exits_2(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = check(tmp_path, pg_url, capsys)
    assert code == 2
    assert lines == [
        f"store.url: database not migrated (schema version 0, this sidecar needs {len(MIGRATIONS)}):"
        " start the sidecar once to apply the migrations"
    ]


def test_check_database_newer_than_the_code_names_the_schema_version_and_exits_2(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = len(MIGRATIONS) + 1
    asyncio.run(migrated(pg_url, extra_version=newer))
    code, lines = check(tmp_path, pg_url, capsys)
    assert code == 2
    assert lines == [f"store.url: database schema version {newer} is newer than this sidecar ({len(MIGRATIONS)})"]


def test_check_migrated_database_prints_ok_and_exits_0(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(migrated(pg_url))
    assert check(tmp_path, pg_url, capsys) == (0, ["ok"])


def test_check_as_a_process_on_a_closed_port_exits_2_with_one_line(tmp_path: Path) -> None:
    config = config_with_store(tmp_path, f"postgresql://wx@127.0.0.1:{free_port()}/wx?sslmode=disable")
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "--config", str(config), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "database unreachable" in done.stderr
