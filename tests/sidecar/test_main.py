"""python -m sidecar: --check, serving, and a clean SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sidecar.__main__ import main
from tests.sidecar.helpers import config_text, write_config

ROOT = Path(__file__).resolve().parents[2]


def test_check_valid_config_prints_ok_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(write_config(tmp_path)), "--check"]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_check_prints_one_line_per_problem_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "unknown_top = 1\n" + config_text().replace('mode = "push"', 'mode = "sideways"')
    assert main(["--config", str(write_config(tmp_path, text)), "--check"]) == 2
    assert sorted(capsys.readouterr().err.splitlines()) == [
        "relay.mode: must be one of push, pull (got 'sideways')",
        "unknown_top: unknown key",
    ]


def test_check_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "absent.toml"), "--check"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_check_as_a_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "--config", str(write_config(tmp_path)), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "ok\n")


def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    text = config_text().replace('listen = "127.0.0.1:8081"', f'listen = "127.0.0.1:{port}"')
    config = write_config(tmp_path, text)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        healthy = wait_healthy(f"http://127.0.0.1:{port}/healthz")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert healthy, stderr
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert '"msg": "store opened"' in stderr
    assert (tmp_path / "var" / "sidecar.sqlite3").exists()


def wait_healthy(url: str, deadline_s: float = 20.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            time.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_feature_sub_command_runs_with_the_loaded_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    import sidecar.__main__ as entry
    from sidecar.config import SidecarConfig

    def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        parser = subparsers.add_parser("hello")
        parser.add_argument("name")

        def hello(config: SidecarConfig, args: argparse.Namespace) -> int:
            print(f"hello {args.name} on {config.default_account().name}")
            return 7

        parser.set_defaults(command=hello)

    monkeypatch.setattr(entry, "COMMAND_MODULES", (add_commands,))
    assert entry.main(["--config", str(write_config(tmp_path)), "hello", "bob"]) == 7
    assert capsys.readouterr().out == "hello bob on main\n"
