"""Drive a server with wrk: pre-built distinct callbacks, latency percentiles out as JSON.

The Lua script loads a request file (``path TAB body`` per line, see ``bench.callbacks``) into
a table of pre-formatted requests in ``init`` and sends them in order, so wrk spends its time on
the socket rather than in Lua. One wrk thread reads the whole file; with several threads each
would send the same requests, which must not happen when every request has to be a new event.
If the run outlasts the file the script starts over and counts the wrap, and the report says so.
``done`` prints one ``BENCH_JSON`` line with the figures, so no text output is scraped.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.procs import LOAD_CORE, pinned

LUA = r"""
local reqs, n, i = {}, 0, 0
wrapped = 0

function init(args)
  local headers = { ["Content-Type"] = "text/xml" }
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    reqs[n] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
  end
end

function request()
  i = i + 1
  if i > n then i = 1; wrapped = wrapped + 1 end
  return reqs[i]
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + (t:get("wrapped") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout, w))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    errors: int  # socket errors, timeouts and non-2xx answers
    wrapped: int  # times the request file was exhausted and started over

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def write_script(workdir: Path) -> Path:
    path = workdir / "callbacks.lua"
    path.write_text(LUA, encoding="utf-8")
    return path


def run_wrk(
    url: str,
    requests_file: Path,
    *,
    script: Path,
    duration_s: float,
    connections: int,
    timeout_s: float = 5.0,
) -> WrkResult:
    """One wrk run pinned to the load core; raises with wrk's output if it printed no figures."""
    command = pinned([
        "wrk", "-t1", f"-c{connections}", f"-d{duration_s:g}s", f"--timeout={timeout_s:g}s", "--latency",
        "-s", str(script), url, "--", str(requests_file),
    ], LOAD_CORE)  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 120, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return _result(json.loads(line.removeprefix("BENCH_JSON ")))
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")


def _result(raw: dict[str, float]) -> WrkResult:
    duration_s = raw["duration_us"] / 1e6
    return WrkResult(
        requests=int(raw["requests"]),
        duration_s=round(duration_s, 3),
        rps=round(raw["requests"] / duration_s, 1) if duration_s else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
        errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]),
        wrapped=int(raw["wrapped"]),
    )
