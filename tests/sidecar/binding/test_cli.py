"""``python -m sidecar bindings …`` as an admin runs it: a real process on a real store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.config import load_config
from sidecar.store import Binding, open_store
from tests.sidecar.helpers import write_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def sidecar(config: Path, *args: str, config_last: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [*args, "--config", str(config)] if config_last else ["--config", str(config), *args]
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *argv], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def seed(config_path: Path, *rows: tuple[str, str, str]) -> None:
    async def run() -> None:
        store = await open_store(load_config(config_path).store)
        try:
            for account, username, wx_id in rows:
                await store.bindings.bind(account, username, wx_id, now=1_700_000_000.0)
        finally:
            await store.close()

    asyncio.run(run())


def stored(config_path: Path, account: str = "main") -> list[Binding]:
    async def run() -> list[Binding]:
        store = await open_store(load_config(config_path).store)
        try:
            return await store.bindings.list(account)
        finally:
            await store.close()

    return asyncio.run(run())


def test_cli_list_prints_every_binding(config_path: Path) -> None:
    seed(config_path, ("main", "alice", "oAlice"), ("corp", "bob", "bob-wecom"))
    result = sidecar(config_path, "bindings", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "account\tusername\twx_id\tstate\tbound_at"
    assert "corp\tbob\tbob-wecom\tactive\t2023-11-14T22:13:20Z" in lines
    assert any(line.startswith("main\talice\toAlice\tactive") for line in lines)
    assert "2 binding(s)" in result.stderr


def test_cli_list_one_account_as_json(config_path: Path) -> None:
    seed(config_path, ("main", "alice", "oAlice"), ("corp", "bob", "bob-wecom"))
    result = sidecar(config_path, "bindings", "list", "--account", "corp", "--json")
    assert result.returncode == 0
    assert result.stdout.strip() == (
        '{"account": "corp", "username": "bob", "wx_id": "bob-wecom", "active": true, "bound_at": 1700000000.0}'
    )


def test_cli_accepts_config_after_the_sub_command(config_path: Path) -> None:
    seed(config_path, ("main", "alice", "oAlice"))
    result = sidecar(config_path, "bindings", "show", "alice", config_last=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("main\talice\toAlice\tactive")


def test_cli_show_unknown_user_exits_1(config_path: Path) -> None:
    result = sidecar(config_path, "bindings", "show", "nobody")
    assert result.returncode == 1
    assert "nobody has no binding on main" in result.stderr


def test_cli_unknown_account_exits_2(config_path: Path) -> None:
    result = sidecar(config_path, "bindings", "list", "--account", "nope")
    assert result.returncode == 2
    assert "unknown account 'nope'" in result.stderr


def test_cli_remove_unbinds(config_path: Path) -> None:
    seed(config_path, ("main", "alice", "oAlice"), ("main", "carol", "oCarol"))
    result = sidecar(config_path, "bindings", "remove", "alice")
    assert result.returncode == 0
    assert [b.username for b in stored(config_path)] == ["carol"]
    assert sidecar(config_path, "bindings", "remove", "alice").returncode == 1


def test_cli_import_reports_imported_skipped_and_conflicting(config_path: Path, tmp_path: Path) -> None:
    seed(config_path, ("main", "alice", "oAlice"), ("main", "dave", "oDave"))
    csv_file = tmp_path / "export.csv"
    csv_file.write_text(
        "\ufeffusername,wx_userid\n"
        "alice,oAlice\n"  # already bound to this id: skipped
        "bob,oBob\n"  # imported
        "carol,\n"  # no id: skipped
        "eve,oDave\n"  # the id belongs to dave: conflicting
        "dave,oDave2\n"  # dave has another id: conflicting
        "frank,oFrank,extra column\n"  # imported
        "frank,oFrank9\n"  # frank twice in the file: conflicting
        "\n"
        "bad name,oX\n",  # refused
        encoding="utf-8",
    )
    result = sidecar(config_path, "bindings", "import", str(csv_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "imported 2, skipped 2, conflicting 3, refused 1"
    assert "line 5: eve:" in result.stdout and "line 8: frank: clashes with line 7" in result.stdout
    got = {b.username: b.wx_id for b in stored(config_path)}
    assert got == {"alice": "oAlice", "bob": "oBob", "dave": "oDave", "frank": "oFrank"}


def test_cli_import_into_named_account(config_path: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("zhangsan,zhangsan\nlisi,lisi\n", encoding="utf-8")
    result = sidecar(config_path, "bindings", "import", str(csv_file), "--account", "corp")
    assert result.stdout.splitlines()[-1] == "imported 2, skipped 0, conflicting 0, refused 0"
    assert [b.username for b in stored(config_path, "corp")] == ["lisi", "zhangsan"]
    assert stored(config_path, "main") == []


def test_cli_import_twice_is_idempotent(config_path: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("alice,oAlice\n", encoding="utf-8")
    sidecar(config_path, "bindings", "import", str(csv_file))
    again = sidecar(config_path, "bindings", "import", str(csv_file))
    assert again.stdout.splitlines()[-1] == "imported 0, skipped 1, conflicting 0, refused 0"


def test_cli_import_missing_file_exits_2(config_path: Path, tmp_path: Path) -> None:
    result = sidecar(config_path, "bindings", "import", str(tmp_path / "nope.csv"))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_cli_import_mallory_at_all_is_refused_with_its_line(config_path: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("username,wx_userid\nbob,oBob\nmallory,@all\n", encoding="utf-8")
    result = sidecar(config_path, "bindings", "import", str(csv_file))
    assert result.returncode == 0, result.stderr
    assert "refused     line 3: mallory: WeChat id '@all' is not accepted" in result.stdout
    assert result.stdout.splitlines()[-1] == "imported 1, skipped 0, conflicting 0, refused 1"
    assert [b.username for b in stored(config_path)] == ["bob"]


def test_cli_import_eve_carol_pipe_bob_is_refused_with_its_line(config_path: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("zhangsan,zhangsan\neve,carol|bob\n", encoding="utf-8")
    result = sidecar(config_path, "bindings", "import", str(csv_file), "--account", "corp")
    assert "refused     line 2: eve: WeChat id 'carol|bob' holds a separator" in result.stdout
    assert [b.username for b in stored(config_path, "corp")] == ["zhangsan"]


def test_cli_import_line_numbers_count_lines_of_quoted_fields(config_path: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text('bob,"oBob\noCarol"\nmallory,"@all"\n', encoding="utf-8")
    result = sidecar(config_path, "bindings", "import", str(csv_file))
    assert "line 1: bob: WeChat id 'oBob\\noCarol' holds a control character" in result.stdout
    assert "line 3: mallory:" in result.stdout


HOSTILE_IDS = ["oEve\x1b[31m", "oEve\tcarol", "oEve\ncarol", "oEve\x00", '=HYPERLINK("http://evil.example/")']


@pytest.mark.parametrize("wx_id", HOSTILE_IDS)
def test_cli_import_ansi_tab_newline_nul_or_hyperlink_id_is_refused_and_shown_escaped(
    config_path: Path, tmp_path: Path, wx_id: str
) -> None:
    csv_file = tmp_path / "export.csv"
    quoted = wx_id.replace('"', '""')
    csv_file.write_text(f'eve,"{quoted}"\n', encoding="utf-8")
    result = sidecar(config_path, "bindings", "import", str(csv_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "imported 0, skipped 0, conflicting 0, refused 1"
    assert result.stdout.startswith("refused     line 1: eve: WeChat id '")
    assert not any(c in result.stdout for c in "\x1b\t\x00") and len(result.stdout.splitlines()) == 2
    assert stored(config_path) == []


def test_cli_import_200_kb_field_exits_2_with_one_line(config_path: Path, tmp_path: Path) -> None:
    csv_file = tmp_path / "export.csv"
    csv_file.write_text("bob,oBob\neve," + "x" * 200_000 + "\n", encoding="utf-8")
    result = sidecar(config_path, "bindings", "import", str(csv_file))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"cannot read {csv_file}: line 2: field larger than field limit")
    assert stored(config_path) == []


def test_cli_list_escapes_control_characters_stored_before_the_rules(config_path: Path) -> None:
    seed(config_path, ("main", "eve\x1b[2J", "oEve\x1b]0;pwned\x07\tx\ny"))
    result = sidecar(config_path, "bindings", "list")
    [row] = result.stdout.splitlines()[1:]
    assert row.split("\t")[:3] == ["main", "eve\\u001b[2J", "oEve\\u001b]0;pwned\\u0007\\tx\\ny"]
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout


def test_cli_list_json_escapes_c1_and_bidi_controls(config_path: Path) -> None:
    seed(config_path, ("main", "eve", "oEve\x9b31m\u202e"))
    result = sidecar(config_path, "bindings", "list", "--json")
    assert '"wx_id": "oEve\\u009b31m\\u202e"' in result.stdout
    assert json.loads(result.stdout)["wx_id"] == "oEve\x9b31m\u202e"


def test_cli_show_username_with_ansi_escape_prints_it_escaped(config_path: Path) -> None:
    result = sidecar(config_path, "bindings", "show", "\x1b[2Jeve")
    assert result.returncode == 1
    assert result.stderr == "\\u001b[2Jeve has no binding on main\n"
