"""``python -m gateway``: --check exit codes, and a clean exit on SIGTERM with in-flight work finished."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.__main__ import main
from gateway.config import load_config
from gateway.metrics import GatewayMetrics
from gateway.spool.queue import Spool
from tests.gateway.conftest import ACCOUNTS, MP_APP_ID, MP_KEY, MP_TOKEN
from tests.gateway.helpers import CallbackBuilder, text_message, write_config

ROOT = Path(__file__).resolve().parents[2]


# --- --check -------------------------------------------------------------------------------


def test_main_check_valid_config_prints_ok_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(write_config(tmp_path, ACCOUNTS)), "--check"]) == 0
    assert capsys.readouterr().out == "ok\n"


def test_main_check_does_not_create_the_spool(tmp_path: Path) -> None:
    main(["--config", str(write_config(tmp_path, ACCOUNTS)), "--check"])
    assert not (tmp_path / "spool.sqlite3").exists()


def test_main_check_prints_one_line_per_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accounts = ACCOUNTS.replace('kind = "wecom"', 'kind = "wcom"', 1) + "\n[other]\nx = 1\n"
    path = write_config(tmp_path, accounts, server="lisen = 1\n")
    assert main(["--config", str(path), "--check"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert "server.lisen: unknown key" in lines
    assert "other: unknown key" in lines
    assert any(line.startswith("accounts[3].kind: must be one of mp, wecom") for line in lines)


def test_main_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "absent.toml"), "--check"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_main_bad_config_without_check_exits_2_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, ACCOUNTS.replace('token = "spamtest"', 'token = "x"', 1))
    assert main(["--config", str(path)]) == 2
    assert "accounts[0].token: must be 3-32 letters or digits" in capsys.readouterr().err


def test_main_secret_from_missing_env_var_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, ACCOUNTS.replace('token = "spamtest"', 'token = { env = "WXGW_TEST_UNSET" }', 1))
    assert main(["--config", str(path), "--check"]) == 2
    assert "environment variable WXGW_TEST_UNSET is not set" in capsys.readouterr().err


async def test_main_module_check_runs_as_a_command(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(write_config(tmp_path, ACCOUNTS)), "--check",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert (proc.returncode, out, err) == (0, b"ok\n", b"")


async def test_main_module_check_bad_config_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, ACCOUNTS, extra="typo = true\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(path), "--check",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert (proc.returncode, out, err) == (2, b"", b"typo: unknown key\n")


# --- serving and stopping ------------------------------------------------------------------


class Gateway:
    """A ``python -m gateway`` child process and its JSON log lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.logs: list[dict[str, Any]] = []
        self.port = 0

    async def read_until(self, message: str, timeout_s: float = 10.0) -> dict[str, Any]:
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self.proc.stderr.readline()
                if not line:
                    raise AssertionError(f"gateway exited before logging {message!r}: {self.logs}")
                entry = json.loads(line)
                self.logs.append(entry)
                if entry["msg"] == message:
                    return entry

    async def drain(self) -> int:
        assert self.proc.stderr is not None
        async with asyncio.timeout(10):
            for line in (await self.proc.stderr.read()).splitlines():
                self.logs.append(json.loads(line))
            return await self.proc.wait()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Gateway]:
    # main gets a 1 s reply budget and the sidecar is down, so a callback stays in flight 1 s.
    accounts = ACCOUNTS.replace("reply_budget = 0.3\nlegacy_path = true", "reply_budget = 1.0\nlegacy_path = true")
    path = write_config(tmp_path, accounts, extra='log_level = "debug"\n')  # accepted callbacks log at debug
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(path),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    gateway = Gateway(proc)
    try:
        gateway.port = (await gateway.read_until("listening"))["port"]
        yield gateway
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def committed(session: aiohttp.ClientSession, port: int) -> None:
    async with asyncio.timeout(5):
        while True:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                if "wxgw_spool_depth 1.0" in await r.text():
                    return
            await asyncio.sleep(0.02)


async def test_main_serves_callbacks_on_the_configured_listener(running: Gateway) -> None:
    wx = CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=int(time.time()))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{running.port}/wechat/main/callback", params=wx.mp_verify("hi")) as r:
            assert (r.status, await r.text()) == (200, "hi")
    running.proc.send_signal(signal.SIGTERM)
    assert await running.drain() == 0


async def test_main_sigterm_finishes_the_request_in_flight_and_exits_0(running: Gateway, tmp_path: Path) -> None:
    wx = CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=int(time.time()))
    fields = text_message("in flight")
    query, body = wx.mp_safe(fields)
    url = f"http://127.0.0.1:{running.port}/wechat/main/callback"
    async with aiohttp.ClientSession() as session:
        pending = asyncio.create_task(session.post(url, params=query, data=body))
        await committed(session, running.port)  # the handler now waits out its 1 s reply budget
        running.proc.send_signal(signal.SIGTERM)
        async with await pending as resp:
            assert (resp.status, await resp.text()) == (200, "success")
    assert await running.drain() == 0
    assert [e["msg"] for e in running.logs][-1] == "stopped"
    [answered] = [e for e in running.logs if e["msg"] == "callback answered"]
    assert len(answered["request_id"]) == 32
    assert (answered["user"], answered["outcome"], answered["mode"]) == ("oyOR…f0rs", "accepted", "safe")
    assert answered["level"] == "debug"
    spool = await Spool.open(load_config(tmp_path / "gateway.toml").spool, GatewayMetrics())
    try:
        assert spool.stats().depth == 1
    finally:
        await spool.close()


async def test_main_sigint_exits_0(running: Gateway) -> None:
    running.proc.send_signal(signal.SIGINT)
    assert await running.drain() == 0


async def test_main_unusable_spool_path_exits_1_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "spool.sqlite3").mkdir()  # a directory where the spool file should be
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--config", str(write_config(tmp_path, ACCOUNTS)),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    last = json.loads(err.splitlines()[-1])
    assert last["msg"] == "cannot run" and "spool" in last["reason"]
    assert "Traceback" not in err.decode()
