"""Where the gateway's time goes under load: py-spy samples bucketed by component.

``python -m bench --only gateway --profile`` adds one more gateway run after the measured
rounds, with ``py-spy record --gil --nonblocking`` attached from the load core: only samples
where a thread holds the GIL count, i.e. Python doing work, not threads waiting on a socket,
a lock or fsync. Each sample is put in the first bucket whose pattern its stack contains, so a
sample inside the XML parser called from the handler counts as XML parsing, not as the handler.
Figures are the share of GIL samples and the GIL time per answered request.

py-spy is optional (``pip install py-spy``); without it the profile is skipped with a note.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.callbacks import PATH
from bench.procs import LOAD_CORE, pinned
from bench.scale import Scale
from bench.stack import GatewayOptions, Stack
from bench.wrk import run_wrk

RATE_HZ = 250

# (bucket, patterns): the first bucket with a pattern found in the sample's stack wins.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("spool thread: SQLite calls (Python side)", ("): spool_",)),
    ("XML parsing (wxxml, xmltodict, expat)", ("xmltodict", "gateway/wechat/wxxml.py")),
    ("AES decrypt + base64 (crypto.py)", ("MessageCipher",)),
    ("signature checks (verify.py)", ("gateway/wechat/verify.py",)),
    ("envelope + event id (contract)", ("make_envelope",)),
    ("JSON log line per callback", ("logging/__init__", "common/logs.py")),
    ("Prometheus counters", ("prometheus_client",)),
    ("reply wait incl. per-request spool lookup", ("Spool.wait_reply",)),
    ("spool commit: queue + group write", ("Spool.commit", "Spool._write")),
    ("push relay: lease, JSON, HTTP client, ack", ("relay_push.py", "aiohttp/client")),
    ("thread hand-offs (executor futures, wake-ups)", ("_chain_future", "run_in_executor", "concurrent/futures")),
    ("aiohttp server: parse, route, respond", ("aiohttp/",)),
    ("asyncio event loop", ("asyncio/",)),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def profile_gateway(stack: Stack, scale: Scale, requests: Path, script: Path, warmup: Path) -> dict[str, Any]:
    """One gateway run under wrk with py-spy attached; the bucketed breakdown."""
    spy = py_spy()
    if spy is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    raw = stack.workdir / "gateway-profile.txt"
    sink, sink_port = stack.start_sink()
    gateway = stack.start_gateway(GatewayOptions(), sink_port=sink_port)
    try:
        url = gateway.url + PATH
        run_wrk(url, warmup, script=script, duration_s=scale.warmup_s, connections=scale.connections)
        command = pinned([
            spy, "record", "--pid", str(gateway.proc.pid), "--gil",
            "--nonblocking", "--threads", "--rate", str(RATE_HZ), "--duration", f"{scale.duration_s:g}",
            "--format", "raw", "--output", str(raw),
        ], LOAD_CORE)  # fmt: skip
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            result = run_wrk(url, requests, script=script, duration_s=scale.duration_s, connections=scale.connections)
            _, errors = recorder.communicate(timeout=60)
        finally:
            if recorder.poll() is None:
                recorder.kill()
                recorder.wait()
    finally:
        stack.procs.stop(gateway.proc)
        stack.procs.stop(sink)
    if not raw.exists():
        return {"skipped": f"py-spy recorded nothing: {errors.decode(errors='replace')[-300:]}"}
    return {"rps": result.rps, "requests": result.requests, **breakdown(raw.read_text(), result.requests)}


def breakdown(raw: str, requests: int) -> dict[str, Any]:
    """Bucket py-spy's raw (collapsed-stack) output; also the top leaf frames."""
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        buckets[_bucket(stack)] += samples
        leaves[stack.rsplit(";", 1)[-1]] += samples
    seconds_per_sample = 1 / RATE_HZ
    per_request = 1e6 * seconds_per_sample / requests if requests else 0.0
    return {
        "gil_samples": total,
        "rate_hz": RATE_HZ,
        "buckets": [
            {"bucket": name, "share": round(n / total, 3), "us_per_req": round(n * per_request, 1)}
            for name, n in buckets.most_common()
        ]
        if total
        else [],
        "top_leaves": [{"frame": frame, "share": round(n / total, 3)} for frame, n in leaves.most_common(15)]
        if total
        else [],
    }


def _bucket(stack: str) -> str:
    for name, patterns in BUCKETS:
        if any(p in stack for p in patterns):
            return name
    return "other"


def table(profile: dict[str, Any]) -> list[str]:
    if "skipped" in profile:
        return [f"Profile skipped: {profile['skipped']}", ""]
    lines = [
        f"Gateway profile (py-spy --gil, {profile['rate_hz']} Hz, {profile['rps']:.0f} req/s while sampled): "
        "GIL time per answered callback",
    ]
    lines += [f"  {b['us_per_req']:7.1f} us  {100 * b['share']:5.1f}%  {b['bucket']}" for b in profile["buckets"]]
    return [*lines, ""]
