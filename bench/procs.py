"""Processes the benchmarks start: pinned to a core, logged to a file, always stopped.

Every server a benchmark needs runs as its own process so it can be pinned (``taskset``) to a
core of its own and so its RSS can be read from ``/proc``. ``Processes`` is a context manager:
whatever happens inside it (an exception, Ctrl-C), every process it started is stopped on exit,
by its own pid, with SIGTERM first and SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SERVER_CORE = 0  # the one core the server under test gets
LOAD_CORE = 1  # wrk, the sink, the pull client and this orchestrator share the other
# The machine is shared: a higher priority (lower nice) keeps other people's work from taking
# turns on the benchmark's cores. With autogroup scheduling (Linux's default for sessions) a
# task's nice only counts inside its session's group, so the group's nice is raised as well.
# Without the privilege both stay at 0 (``nice`` warns and runs the program anyway).
NICE = -10
PYTHON = sys.executable

# urllib honours http_proxy; benchmark traffic must stay on loopback, so no proxies at all.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pin_self(core: int = LOAD_CORE) -> None:
    """Keep the orchestrator (and what it runs in-process) off the server's core, at NICE."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {core})
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    with contextlib.suppress(OSError), open("/proc/self/autogroup", "w", encoding="ascii") as autogroup:
        autogroup.write(str(NICE))


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    """``argv`` run at NICE on ``core``; taskset and nice exec in place, so the pid is the program's.

    ``nice -n`` is relative: the children end at the orchestrator's NICE plus this.
    """
    prefix = ["nice", "-n", str(NICE)]
    if core is not None:
        prefix = ["taskset", "-c", str(core), *prefix]
    return [*prefix, *argv]


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """A plain GET on loopback: (status, body); connection errors raise OSError."""
    try:
        with _DIRECT.open(url, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@dataclass
class Proc:
    """One started process: its name (for logs and errors), Popen and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Starts processes and guarantees they are stopped when the ``with`` block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[Proc] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in reversed(self._procs):
            self.stop(proc)

    def start(self, name: str, argv: Sequence[str], *, core: int | None, env: dict[str, str] | None = None) -> Proc:
        """Start ``argv`` pinned to ``core`` at NICE priority."""
        log_path = self.workdir / f"{name}.log"
        command = pinned(argv, core)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=Path(__file__).resolve().parent.parent,
            )
        proc = Proc(name, popen, log_path)
        self._procs.append(proc)
        return proc

    def stop(self, proc: Proc, grace_s: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; returns the exit code."""
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(signal.SIGTERM)
            try:
                proc.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.kill()
                proc.popen.wait(5)
        if proc in self._procs:
            self._procs.remove(proc)
        return proc.popen.returncode


def wait_http(proc: Proc, url: str, timeout_s: float = 60.0, *, want: int = 200) -> float:
    """Poll ``url`` until it answers ``want``; returns seconds waited. Fails if the process dies."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        with contextlib.suppress(OSError):
            if http_get(url, timeout_s=1.0)[0] == want:
                return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout_s} s:\n{proc.log_tail()}")


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    """A ``/proc/<pid>/status`` memory line (VmRSS, VmHWM) in KiB; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class RssSampler:
    """Samples a process's VmRSS on a background thread while a ``with`` block runs."""

    pid: int
    interval_s: float = 0.2
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_kib(self.pid)
            if value:
                self.samples.append(value)
            self._stop.wait(self.interval_s)

    def summary(self) -> dict[str, float]:
        """Peak, median and last sample in MiB (0 when nothing was sampled)."""
        if not self.samples:
            return {"peak_mib": 0.0, "median_mib": 0.0, "last_mib": 0.0}
        ordered = sorted(self.samples)
        return {
            "peak_mib": round(ordered[-1] / 1024, 1),
            "median_mib": round(ordered[len(ordered) // 2] / 1024, 1),
            "last_mib": round(self.samples[-1] / 1024, 1),
        }


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU seconds of a process (all threads) or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: int) -> float:
    """Seconds core ``core`` spent doing anything (not idle, not waiting for I/O) since boot."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith(f"cpu{core} "):
                    ticks = [int(x) for x in line.split()[1:]]
                    busy = sum(ticks) - ticks[3] - ticks[4]  # minus idle and iowait
                    return busy / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    return 0.0


@dataclass
class CpuMeter:
    """CPU used during a ``with`` block by a process, by its main thread (the event loop), and by
    anything else on the server core (other people's work on a shared machine: a noise gauge)."""

    pid: int
    core: int = SERVER_CORE
    process_s: float = 0.0
    main_thread_s: float = 0.0
    core_s: float = 0.0
    wall_s: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = (
            cpu_seconds(self.pid),
            cpu_seconds(self.pid, self.pid),
            core_busy_seconds(self.core),
            time.monotonic(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        process, main, core, wall = self._start
        self.process_s = cpu_seconds(self.pid) - process
        self.main_thread_s = cpu_seconds(self.pid, self.pid) - main
        self.core_s = core_busy_seconds(self.core) - core
        self.wall_s = time.monotonic() - wall

    def summary(self, requests: int) -> dict[str, float]:
        """Core utilisation, CPU microseconds per request, and the server core's foreign load."""
        per = 1e6 / requests if requests else 0.0
        wall = self.wall_s or 1.0
        return {
            "cpu_util": round(self.process_s / wall, 2),
            "loop_util": round(self.main_thread_s / wall, 2),
            "cpu_us_per_req": round(self.process_s * per),
            "loop_cpu_us_per_req": round(self.main_thread_s * per),
            "foreign_util": round(max(0.0, self.core_s - self.process_s) / wall, 2),
        }
