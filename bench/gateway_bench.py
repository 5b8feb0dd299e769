"""Part 1: safe-mode MP callbacks against the gateway and three baselines, side by side.

Every variant gets the same treatment in the same run: its own fresh process pinned to the
server core, a short wrk warm-up, then a wrk measurement with distinct pre-built callbacks from
the load core. The variants are interleaved round by round (a b c d, a b c d, ...) so a noisy
neighbour hurts all of them alike, and each variant's best round is reported. Besides wrk's
figures, each run records the server's CPU use (whole process and event-loop thread) and RSS,
which tells a CPU-bound server from one that waits.

(a) bare aiohttp, (b) SDK-style verify + decrypt, (c) the gateway (durable spool,
synchronous=FULL, push relay draining to the sink on the load core), (d) (b) + one SQLite
commit per callback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.callbacks import MSG_ID_BASE, PATH, generate, write_requests
from bench.procs import PYTHON, SERVER_CORE, CpuMeter, Proc, RssSampler, free_port, wait_http
from bench.profile import profile_gateway
from bench.profile import table as profile_table
from bench.scale import Scale
from bench.stack import Gateway, GatewayOptions, Stack, gateway_metrics, sink_stats
from bench.wrk import WrkResult, run_wrk, write_script

TARGET_VS_BARE = 0.8
TARGET_VS_SDK = 2.0
WARMUP_MSG_ID = MSG_ID_BASE + 500_000_000  # warm-up callbacks never share a MsgId with measured ones


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    kind: str  # bare | sdk | sdk-sqlite | gateway


VARIANTS = (
    Variant("a", "bare aiohttp (ceiling)", "bare"),
    Variant("b", "SDK-style verify+decrypt", "sdk"),
    Variant("c", "gateway (durable, relaying)", "gateway"),
    Variant("d", "SDK-style + SQLite commit", "sdk-sqlite"),
)


@dataclass
class Server:
    proc: Proc  # the server under test
    url: str
    helpers: tuple[Proc, ...] = ()  # stopped after the server (the sink)
    sink_port: int | None = None
    gateway: Gateway | None = None


def run(stack: Stack, scale: Scale, log: Callable[[str], None] = print, *, profile: bool = False) -> dict[str, Any]:
    """Measure every variant ``scale.rounds`` times; return figures, ratios and targets.

    With ``profile``, one more gateway run follows under py-spy (``bench.profile``).
    """
    workdir = stack.workdir
    measured = workdir / "requests.txt"
    warmup = workdir / "warmup.txt"
    started = time.monotonic()
    write_requests(measured, generate(scale.requests, first_msg_id=MSG_ID_BASE))
    write_requests(warmup, generate(int(scale.warmup_s * scale.max_rps), first_msg_id=WARMUP_MSG_ID))
    log(f"  generated {scale.requests} distinct callbacks in {time.monotonic() - started:.1f} s")
    script = write_script(workdir)
    rounds: dict[str, list[dict[str, Any]]] = {v.key: [] for v in VARIANTS}
    for round_no in range(1, scale.rounds + 1):
        for variant in VARIANTS:
            figures = _measure(stack, scale, variant, script, measured, warmup)
            rounds[variant.key].append(figures)
            log(
                f"  round {round_no} ({variant.key}) {variant.label:30s} {figures['rps']:8.0f} req/s  "
                f"p50 {figures['p50_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f} ms  "
                f"cpu {figures['cpu_util']:.2f}  {figures['cpu_us_per_req']} us/req  "
                f"other load on core {figures['foreign_util']:.2f}"
            )
    best = {key: max(runs, key=lambda f: f["rps"]) for key, runs in rounds.items()}
    section: dict[str, Any] = {
        "connections": scale.connections,
        "duration_s": scale.duration_s,
        "rounds": scale.rounds,
        "variants": [
            {
                "key": v.key,
                "label": v.label,
                "kind": v.kind,
                **best[v.key],
                "rps_median": _median([r["rps"] for r in rounds[v.key]]),
                "all_rounds": rounds[v.key],
            }
            for v in VARIANTS
        ],
        "ratios": _ratios({k: f["rps"] for k, f in best.items()}),
        "ratios_of_medians": _ratios({k: _median([r["rps"] for r in runs]) for k, runs in rounds.items()}),
    }
    if profile:
        section["profile"] = profile_gateway(stack, scale, measured, script, warmup)
        for line in profile_table(section["profile"]):
            log("  " + line)
    return section


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _ratios(rps: dict[str, float]) -> dict[str, Any]:
    """(c) against the baselines, and whether the issue's targets are met."""
    gateway, bare, sdk, durable = (rps[k] for k in ("c", "a", "b", "d"))
    vs_bare = gateway / bare if bare else 0.0
    vs_sdk = gateway / sdk if sdk else 0.0
    return {
        "c_over_a": round(vs_bare, 2),
        "c_over_a_target": TARGET_VS_BARE,
        "c_over_a_met": vs_bare >= TARGET_VS_BARE,
        "c_over_b": round(vs_sdk, 2),
        "c_over_b_target": TARGET_VS_SDK,
        "c_over_b_met": vs_sdk >= TARGET_VS_SDK,
        "c_over_d": round(gateway / durable, 2) if durable else 0.0,
    }


def _measure(
    stack: Stack, scale: Scale, variant: Variant, script: Path, measured: Path, warmup: Path
) -> dict[str, Any]:
    server = _start(stack, variant)
    try:
        run_wrk(server.url, warmup, script=script, duration_s=scale.warmup_s, connections=scale.connections)
        before = _gateway_counters(server)
        with CpuMeter(server.proc.pid) as cpu, RssSampler(server.proc.pid) as rss:
            result = run_wrk(
                server.url, measured, script=script, duration_s=scale.duration_s, connections=scale.connections
            )
        figures: dict[str, Any] = {**result.as_dict(), **cpu.summary(result.requests), "rss": rss.summary()}
        if server.gateway is not None and server.sink_port is not None:
            figures["gateway"] = _gateway_checks(server, before, result)
        return figures
    finally:
        _stop(stack, server)


def _start(stack: Stack, variant: Variant) -> Server:
    if variant.kind == "gateway":
        sink, sink_port = stack.start_sink()
        gateway = stack.start_gateway(GatewayOptions(), sink_port=sink_port)
        return Server(gateway.proc, gateway.url + PATH, (sink,), sink_port, gateway)
    port = free_port()
    argv = [PYTHON, "-m", "bench.variants", variant.kind, "--port", str(port)]
    if variant.kind == "sdk-sqlite":
        argv += ["--db", str(stack.workdir / f"sdk-{port}.sqlite3")]
    proc = stack.procs.start(f"variant-{variant.kind}-{port}", argv, core=SERVER_CORE)
    wait_http(proc, f"http://127.0.0.1:{port}/healthz")
    return Server(proc, f"http://127.0.0.1:{port}{PATH}")


def _stop(stack: Stack, server: Server) -> None:
    for proc in (server.proc, *server.helpers):
        stack.procs.stop(proc)


def _gateway_counters(server: Server) -> dict[str, float]:
    if server.gateway is None or server.sink_port is None:
        return {}
    return {**gateway_metrics(server.gateway), "sink_received": sink_stats(server.sink_port)["received"]}


def _gateway_checks(server: Server, before: dict[str, float], result: WrkResult) -> dict[str, Any]:
    """What the gateway did with the measured callbacks: all new, spooled, relayed?"""
    assert server.gateway is not None and server.sink_port is not None
    deadline = time.monotonic() + 30
    after = gateway_metrics(server.gateway)
    while after.get("wxgw_spool_depth", 0) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        after = gateway_metrics(server.gateway)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    outcomes = {k.split(":", 1)[1]: delta(k) for k in after if k.startswith("wxgw_callbacks_total:")}
    batches = delta("wxgw_spool_commit_batch_size_count")
    commits = max(delta("wxgw_spool_commit_seconds_count"), 1)
    return {
        "wrk_answers": result.requests,
        "accepted": int(outcomes.pop("accepted", 0)),
        "duplicates": int(outcomes.pop("duplicate", 0)),
        "other_outcomes": {k: int(v) for k, v in outcomes.items() if v},
        "group_commits": int(batches),
        "mean_group": round(delta("wxgw_spool_commit_batch_size_sum") / batches, 1) if batches else 0.0,
        "mean_commit_ms": round(1000 * delta("wxgw_spool_commit_seconds_sum") / commits, 2),
        "relayed_to_sink": int(sink_stats(server.sink_port)["received"] - before["sink_received"]),
        "unrelayed_after_run": int(after.get("wxgw_spool_depth", 0)),
    }
