"""``python -m devtools.demo`` as ``make demo`` runs it: a child process, its transcript, its exit code."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from devtools.demo import MARKER

REPO = Path(__file__).resolve().parents[2]


def run_demo(*args: str, timeout_s: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.demo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def gateway_port(workdir: Path) -> int:
    listen = tomllib.loads((workdir / "gateway.toml").read_text(encoding="utf-8"))["server"]["listen"]
    return int(listen.rpartition(":")[2])


@pytest.mark.e2e
def test_demo_cli_runs_the_scenario_prints_the_phones_and_exits_0(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"

    result = run_demo("--workdir", str(workdir), "--pull")

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(re.findall(r"^✓ .+ — ", result.stdout, re.MULTILINE)) == 6, result.stdout
    assert "📱 alice (2 messages)\n   [公众号被动回复] 绑定成功\n   [公众号模板消息] 告警通知" in result.stdout
    assert "📱 bob (1 message)\n   [企业微信应用消息] 磁盘空间不足" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("✓ every step succeeded; all processes stopped.")
    assert not listening(gateway_port(workdir))


@pytest.mark.e2e
def test_demo_cli_keep_serves_until_ctrl_c_then_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--workdir", str(workdir), "--keep"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while not any("configs and logs" in line for line in lines) and time.monotonic() < deadline:
            lines.append(demo.stdout.readline())
        assert any("The system keeps running" in line for line in lines), "".join(lines)
        time.sleep(1.0)
        assert demo.poll() is None and listening(gateway_port(workdir))

        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=30)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert demo.returncode == 0, "".join(lines) + output
    assert "✓ every step succeeded; all processes stopped." in output
    assert not listening(gateway_port(workdir))


def test_demo_cli_foreign_workdir_is_refused_and_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("not the demo's", encoding="utf-8")

    result = run_demo("--workdir", str(tmp_path), timeout_s=30)

    assert result.returncode == 2
    assert result.stderr.strip() == f"demo: {tmp_path} exists and was not created by the demo; choose another --workdir"
    assert mine.read_text(encoding="utf-8") == "not the demo's"
    assert not (tmp_path / MARKER).exists()
