"""Part 2: the relay. Draining a backlog (push and pull) and latency at a steady load.

* Backlog drain: the spool is pre-filled (``bench.prefill``) with ``scale.backlog`` pending
  events, then the gateway starts on it: in push mode it pushes to the sink, in pull mode the
  bench's pull client leases and acknowledges. The rate is events over the time from the first
  event relayed to the last one acknowledged; the gateway is pinned to the server core, the
  sink / pull client run on the load core.
* Steady load: callbacks at each of ``scale.steady_rates`` per second (open loop) for
  ``scale.steady_s`` against the gateway in push mode with the default reply budget, so the
  answer to WeChat waits for the sidecar's acknowledgement. Reported: receipt -> sink arrival
  (the event reached the sidecar) and receipt -> answer (durably spooled, relayed,
  acknowledged, answered). A rate above what the gateway can take shows as growing latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import pull, steady
from bench.callbacks import MSG_ID_BASE, generate
from bench.procs import LOAD_CORE, PYTHON
from bench.scale import Scale
from bench.stack import Gateway, GatewayOptions, Stack, gateway_metrics, sink_arrivals, sink_stats
from bench.steady import percentile

STEADY_MSG_ID = MSG_ID_BASE + 800_000_000


def run(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    push = drain_push(stack, scale.backlog)
    log(f"  push drain: {push['events_per_s']:.0f} events/s ({push['events']} events in {push['seconds']:.1f} s)")
    pulled = drain_pull(stack, scale.backlog)
    log(f"  pull drain: {pulled['events_per_s']:.0f} events/s ({pulled['events']} events in {pulled['seconds']:.1f} s)")
    runs = []
    for number, rate in enumerate(scale.steady_rates):
        latency = steady_latency(stack, rate, scale.steady_s, first_msg_id=STEADY_MSG_ID + number * 10_000_000)
        runs.append(latency)
        log(
            f"  steady {latency['rate']:.0f}/s: receipt->sidecar p50 {latency['to_sidecar_p50_ms']:.1f} ms "
            f"p99 {latency['to_sidecar_p99_ms']:.1f} ms; receipt->answer p99 {latency['answer_p99_ms']:.1f} ms"
        )
    return {"push_drain": push, "pull_drain": pulled, "steady": runs}


def prefill(stack: Stack, name: str, events: int) -> tuple[Path, float]:
    """A spool file holding ``events`` pending events (built on the load core)."""
    path = stack.workdir / f"{name}.sqlite3"
    started = time.monotonic()
    proc = stack.procs.start(
        f"prefill-{name}",
        [PYTHON, "-m", "bench.prefill", "--spool", str(path), "--events", str(events)],
        core=LOAD_CORE,
    )
    code = proc.popen.wait()
    if code != 0:
        raise RuntimeError(f"prefill failed ({code}):\n{proc.log_tail()}")
    stack.procs.stop(proc)
    return path, time.monotonic() - started


def _wait_drained(gateway: Gateway, timeout_s: float) -> float:
    """Poll /metrics until the spool holds nothing unacknowledged; returns when (time.time())."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if gateway_metrics(gateway).get("wxgw_spool_depth", 1) == 0:
            return time.time()
        if not gateway.proc.alive():
            raise RuntimeError(f"gateway died:\n{gateway.proc.log_tail()}")
        time.sleep(0.1)
    raise RuntimeError(f"spool not drained within {timeout_s} s")


def drain_push(stack: Stack, events: int) -> dict[str, Any]:
    spool, _ = prefill(stack, "push-backlog", events)
    sink, sink_port = stack.start_sink()
    gateway = stack.start_gateway(GatewayOptions(), sink_port=sink_port, spool=spool)
    try:
        done_at = _wait_drained(gateway, timeout_s=max(120.0, events / 200))
        stats = sink_stats(sink_port)
    finally:
        stack.procs.stop(gateway.proc)
        stack.procs.stop(sink)
    if stats["received"] != events:
        raise RuntimeError(f"push drain: sink received {stats['received']} of {events} events")
    seconds = done_at - stats["first"]
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
        "requests": int(stats["requests"]),
        "duplicates": int(stats["duplicates"]),
        "gateway_startup_s": round(gateway.startup_s, 2),
    }


def drain_pull(stack: Stack, events: int) -> dict[str, Any]:
    spool, _ = prefill(stack, "pull-backlog", events)
    gateway = stack.start_gateway(GatewayOptions(mode="pull"), sink_port=None, spool=spool)
    try:
        tally = asyncio.run(pull.drain(gateway.pull_url, stack.secret, events, timeout_s=max(120.0, events / 200)))
        _wait_drained(gateway, timeout_s=30)
    finally:
        stack.procs.stop(gateway.proc)
    if tally.acked != events or tally.first_event_at is None or tally.last_ack_at is None:
        raise RuntimeError(f"pull drain: {tally.acked} of {events} events acknowledged")
    seconds = tally.last_ack_at - tally.first_event_at
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_s": round(events / seconds, 1),
        "leases": tally.leases,
        "gateway_startup_s": round(gateway.startup_s, 2),
    }


def steady_latency(stack: Stack, rate: float, seconds: float, *, first_msg_id: int) -> dict[str, Any]:
    requests = list(generate(int(rate * seconds), first_msg_id=first_msg_id))
    sink, sink_port = stack.start_sink()
    gateway = stack.start_gateway(GatewayOptions(), sink_port=sink_port)
    try:
        run = asyncio.run(steady.drive(gateway.url, requests, rate))
        _wait_drained(gateway, timeout_s=30)
        arrivals = sink_arrivals(sink_port)
    finally:
        stack.procs.stop(gateway.proc)
        stack.procs.stop(sink)
    answered = [s for s in run.sent if s.status == 200]
    to_sidecar = [1000 * (arrivals[s.event_id] - s.sent_at) for s in run.sent if s.event_id in arrivals]
    to_answer = [1000 * (s.answered_at - s.sent_at) for s in answered]
    span = run.sent[-1].sent_at - run.sent[0].sent_at if len(run.sent) > 1 else 0.0
    return {
        "rate": round(len(run.sent) / span, 1) if span else 0.0,
        "target_rate": rate,
        "seconds": seconds,
        "sent": len(run.sent),
        "answered_200": len(answered),
        "unanswered_30s": sum(1 for s in run.sent if s.status == -1),
        "reached_sidecar": len(to_sidecar),
        "late_starts": run.late_starts,
        "to_sidecar_p50_ms": round(percentile(to_sidecar, 50), 2),
        "to_sidecar_p99_ms": round(percentile(to_sidecar, 99), 2),
        "to_sidecar_max_ms": round(max(to_sidecar, default=0.0), 2),
        "answer_p50_ms": round(percentile(to_answer, 50), 2),
        "answer_p99_ms": round(percentile(to_answer, 99), 2),
        "answer_max_ms": round(max(to_answer, default=0.0), 2),
    }
