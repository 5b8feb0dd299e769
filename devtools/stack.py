"""The whole system on loopback as real processes: the WeChat emulator, the sidecar and the gateway.

Each tier runs exactly as an operator would start it (``python -m devtools.emulator``,
``python -m sidecar``, ``python -m gateway``) from configs and secrets generated into a work
directory (:mod:`devtools.stack_config`), with its log in ``<workdir>/logs/<tier>.log``::

    async with Stack(workdir, StackOptions(relay_mode="pull")) as stack:
        stack.urls.sidecar, stack.urls.gateway, stack.urls.emulator
        await stack.kill("sidecar")          # SIGKILL, as a crash would
        await stack.restart("sidecar")       # same config, same port; waits until ready
        stack.pause("sidecar"); stack.resume("sidecar")   # SIGSTOP / SIGCONT: a stalled process

Start-up waits for readiness (the emulator's JSON line and ``/_emu/health``, the tiers'
``/readyz``); a tier that exits or never gets ready stops everything and raises
:class:`TierError` with the tail of its log. Stopping sends SIGTERM (after SIGCONT, in case it
is paused), then SIGKILL after ``kill_after_s``; ``async with`` stops everything even on error.

An nginx front is the caller's business (the e2e tests start one from deploy/nginx): pass its
URL as ``StackOptions.callback_base`` and point it at ``stack.ports.gateway``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from devtools.stack_config import Identities, Ports, StackOptions, write_configs

TierName = Literal["emulator", "sidecar", "gateway"]
TIERS: tuple[TierName, ...] = ("emulator", "sidecar", "gateway")
REPO_ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.05


class TierError(RuntimeError):
    """A tier did not start, or exited; the message ends with the tail of its log."""


@dataclass(frozen=True)
class Urls:
    emulator: str
    gateway: str
    gateway_pull: str
    sidecar: str
    callback_base: str  # where the emulator sends WeChat's callbacks (the gateway, or a front)


class Tier:
    """One child process: how to start it, where it logs, how to tell it is ready."""

    def __init__(self, name: TierName, argv: Sequence[str], workdir: Path, ready_url: str) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.ready_url = ready_url
        self.log_path = workdir / "logs" / f"{name}.log"
        self.out_path = workdir / "logs" / f"{name}.out"  # stdout (the emulator's JSON line)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def __repr__(self) -> str:
        return f"Tier({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise TierError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log, self.out_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=_child_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the parent, which stops the tiers in order
            )
        self.starts += 1

    async def wait_ready(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        """Until ``ready_url`` answers 200 (and, for the emulator, its JSON line is out)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            if self._line_ok() and await _answers(session, self.ready_url):
                return
            await asyncio.sleep(POLL_S)
        raise TierError(f"{self.name} was not ready within {timeout_s:.0f} s ({self.ready_url}){self.tail()}")

    def _line_ok(self) -> bool:
        if self.name != "emulator":
            return True
        line = _read(self.out_path).partition("\n")[0]
        try:
            return bool(line) and bool(json.loads(line).get("base_url"))
        except ValueError:
            return False

    def _check_alive(self) -> None:
        if self.process is None:
            raise TierError(f"{self.name} was never started")
        code = self.process.poll()
        if code is not None:
            raise TierError(f"{self.name} exited with {code}{self.tail()}")

    def send(self, signum: signal.Signals) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signum)

    async def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code, or None if it is still running after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.process is not None:
            code = self.process.poll()
            if code is not None or time.monotonic() >= deadline:
                return code
            await asyncio.sleep(POLL_S)
        return None

    async def stop(self, kill_after_s: float) -> int | None:
        """SIGTERM (SIGCONT first: a paused process cannot act on it), SIGKILL after the timeout."""
        if not self.running:
            return self.process.returncode if self.process is not None else None
        self.send(signal.SIGCONT)
        self.send(signal.SIGTERM)
        code = await self.wait_exit(kill_after_s)
        if code is None:
            return await self.kill()
        return code

    async def kill(self) -> int | None:
        self.send(signal.SIGKILL)
        return await self.wait_exit(10.0)

    def tail(self, lines: int = 15) -> str:
        text = _read(self.log_path).splitlines()[-lines:]
        return (f"\n--- last lines of {self.log_path} ---\n" + "\n".join(text)) if text else ""


class Stack:
    """The three tiers of one system, their generated configs, and control over each of them."""

    def __init__(
        self,
        workdir: Path,
        options: StackOptions | None = None,
        *,
        python: str = sys.executable,
        ready_timeout_s: float = 60.0,
        kill_after_s: float = 10.0,
    ) -> None:
        self.workdir = workdir.resolve()
        self.options = options or StackOptions()
        self.ids = Identities()
        self.ports = Ports()
        self.ready_timeout_s = ready_timeout_s
        self.kill_after_s = kill_after_s
        self.urls = _urls(self.ports, self.options)
        self.configs: dict[str, Path] = {}
        self.tiers: dict[TierName, Tier] = {
            "emulator": Tier(
                "emulator",
                [python, "-m", "devtools.emulator", "--config", str(self.workdir / "emulator.toml")],
                self.workdir,
                f"{self.urls.emulator}/_emu/health",
            ),
            "sidecar": Tier(
                "sidecar",
                [python, "-m", "sidecar", "--config", str(self.workdir / "sidecar.toml")],
                self.workdir,
                f"{self.urls.sidecar}/readyz",
            ),
            "gateway": Tier(
                "gateway",
                [python, "-m", "gateway", "--config", str(self.workdir / "gateway.toml")],
                self.workdir,
                f"{self.urls.gateway}/readyz",
            ),
        }

    def __repr__(self) -> str:
        return f"Stack({str(self.workdir)!r}, relay={self.options.relay_mode}, tiers={list(self.tiers.values())})"

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def sidecar_db(self) -> Path:
        return self.workdir / "sidecar.sqlite3"

    @property
    def gateway_spool(self) -> Path:
        return self.workdir / "gateway-spool.sqlite3"

    def write_configs(self) -> dict[str, Path]:
        """Write the three tiers' configs; a subclass extends them here, before any tier reads them."""
        return write_configs(self.workdir, self.ids, self.ports, self.options)

    async def start(self) -> None:
        """Write the configs, start every tier at once, wait until all are ready (else stop all)."""
        self.configs = self.write_configs()
        try:
            for tier in self.tiers.values():
                tier.start()
            await self._wait_ready(list(self.tiers.values()))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every tier (gateway first, so nothing new comes in); never raises for a dead one."""
        for name in reversed(TIERS):
            await self.tiers[name].stop(self.kill_after_s)

    async def kill(self, name: TierName) -> None:
        """SIGKILL one tier, as a crash or an OOM kill would."""
        await self.tiers[name].kill()

    async def terminate(self, name: TierName) -> int | None:
        """Stop one tier gracefully (SIGTERM); answers its exit code."""
        return await self.tiers[name].stop(self.kill_after_s)

    async def restart(self, name: TierName) -> None:
        """Stop the tier if it runs, start it again with the same config and port, wait until ready."""
        tier = self.tiers[name]
        await tier.stop(self.kill_after_s)
        tier.start()
        await self._wait_ready([tier])

    def pause(self, name: TierName) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a stalled host).

        Returns once the kernel reports the process stopped (Linux ``/proc``), so whatever the
        caller does next meets a stalled process, not one still finishing its current work.
        """
        tier = self.tiers[name]
        tier.send(signal.SIGSTOP)
        deadline = time.monotonic() + 2.0
        while tier.pid is not None and _proc_state(tier.pid) not in ("T", "") and time.monotonic() < deadline:
            time.sleep(0.005)

    def resume(self, name: TierName) -> None:
        self.tiers[name].send(signal.SIGCONT)

    async def _wait_ready(self, tiers: list[Tier]) -> None:
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(t.wait_ready(session, self.ready_timeout_s) for t in tiers))

    # inspection ------------------------------------------------------------------------------------

    async def metrics(self, session: aiohttp.ClientSession, name: Literal["sidecar", "gateway"]) -> Metrics:
        url = f"{self.urls.sidecar if name == 'sidecar' else self.urls.gateway}/metrics"
        async with session.get(url) as response:
            response.raise_for_status()
            return Metrics.parse(await response.text())

    async def sidecar_rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """Rows from the sidecar's SQLite file, opened read-only (the sidecar may be running)."""
        return await asyncio.to_thread(_query_read_only, self.sidecar_db, sql, params)


@dataclass(frozen=True)
class Metrics:
    """Prometheus samples as ``{(name, frozenset(labels)): value}``, with a lookup that sums."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """The sum over samples named ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)


def _urls(ports: Ports, options: StackOptions) -> Urls:
    def local(port: int) -> str:
        return f"http://127.0.0.1:{port}"

    return Urls(
        emulator=local(ports.emulator),
        gateway=local(ports.gateway),
        gateway_pull=local(ports.gateway_pull),
        sidecar=local(ports.sidecar),
        callback_base=options.callback_base or local(ports.gateway),
    )


def _child_env() -> dict[str, str]:
    """The parent's environment, unbuffered, with loopback exempt from any proxy it names."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for key in ("NO_PROXY", "no_proxy"):
        existing = [part for part in env.get(key, "").split(",") if part]
        env[key] = ",".join([*existing, "127.0.0.1", "localhost"])
    return env


async def _answers(session: aiohttp.ClientSession, url: str) -> bool:
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
        async with session.get(url) as response:
            return response.status == 200
    return False


def _query_read_only(path: Path, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        return list(connection.execute(sql, tuple(params)).fetchall())
    finally:
        connection.close()


def _proc_state(pid: int) -> str:
    """The one-letter process state from ``/proc/<pid>/stat`` ("T" stopped), "" when unknown."""
    stat = _read(Path(f"/proc/{pid}/stat"))
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else ""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


__all__ = ["TIERS", "Metrics", "Stack", "StackOptions", "Tier", "TierError", "TierName", "Urls"]
