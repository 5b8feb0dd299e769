"""Part 3: the gateway's resident memory (VmRSS), under load and with a very large spool.

* Under load: RSS idle after start, then sampled every 0.2 s during a wrk run of distinct
  safe-mode callbacks (push relay draining to the sink), then after the run.
* Large spool: ``scale.big_spool`` pending events are written into a spool file first (a
  separate process, ``bench.prefill``), then the gateway starts on it while its sidecar is
  unreachable (idle: nothing can be relayed; the push relay retries with backoff). After a few
  seconds the sink comes up on the configured address and the relay starts draining; RSS is
  sampled while it does. A spool whose size showed in RSS would grow with every outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.callbacks import MSG_ID_BASE, PATH, generate, write_requests
from bench.procs import RssSampler, free_port, rss_kib
from bench.relay_bench import prefill
from bench.scale import Scale
from bench.stack import GatewayOptions, Stack, gateway_metrics, sink_stats
from bench.wrk import run_wrk, write_script

LOAD_MSG_ID = MSG_ID_BASE + 900_000_000
IDLE_S = 3.0


def run(stack: Stack, scale: Scale, log: Callable[[str], None] = print) -> dict[str, Any]:
    load = under_load(stack, scale)
    log(
        f"  under load: idle {load['idle_mib']} MiB, peak {load['peak_mib']} MiB "
        f"during {load['requests']} callbacks, {load['after_mib']} MiB after"
    )
    big = big_spool(stack, scale)
    log(
        f"  {big['events']} event spool ({big['spool_mib']} MiB on disk): startup {big['startup_s']} s, "
        f"idle {big['idle_mib']} MiB, relaying peak {big['relaying_peak_mib']} MiB "
        f"({big['relayed']} events relayed in {big['watched_s']} s)"
    )
    return {"under_load": load, "big_spool": big}


def under_load(stack: Stack, scale: Scale) -> dict[str, Any]:
    requests = stack.workdir / "memory-requests.txt"
    write_requests(requests, generate(scale.requests, first_msg_id=LOAD_MSG_ID))
    script = write_script(stack.workdir)
    sink, sink_port = stack.start_sink()
    gateway = stack.start_gateway(GatewayOptions(), sink_port=sink_port)
    try:
        time.sleep(1.0)
        idle = rss_kib(gateway.proc.pid)
        with RssSampler(gateway.proc.pid) as rss:
            result = run_wrk(
                gateway.url + PATH, requests, script=script, duration_s=scale.duration_s, connections=scale.connections
            )
        time.sleep(1.0)
        after = rss_kib(gateway.proc.pid)
        peak_ever = rss_kib(gateway.proc.pid, "VmHWM")
    finally:
        stack.procs.stop(gateway.proc)
        stack.procs.stop(sink)
    return {
        "requests": result.requests,
        "rps": result.rps,
        "idle_mib": _mib(idle),
        **{k: v for k, v in rss.summary().items() if k != "last_mib"},
        "after_mib": _mib(after),
        "hwm_mib": _mib(peak_ever),
    }


def big_spool(stack: Stack, scale: Scale) -> dict[str, Any]:
    spool, fill_s = prefill(stack, "big-spool", scale.big_spool)
    sink_port = free_port()  # configured now, listening only later: the sidecar is "down"
    gateway = stack.start_gateway(GatewayOptions(backoff_max_s=1.0), sink_port=sink_port, spool=spool, wait_s=600)
    sink = None
    try:
        with RssSampler(gateway.proc.pid) as idle:
            time.sleep(IDLE_S)
        depth = gateway_metrics(gateway).get("wxgw_spool_depth", 0)
        sink, _ = stack.start_sink(sink_port)
        with RssSampler(gateway.proc.pid) as relaying:
            time.sleep(scale.relay_watch_s)
        relayed = int(sink_stats(sink_port)["received"])
        peak_ever = rss_kib(gateway.proc.pid, "VmHWM")
    finally:
        stack.procs.stop(gateway.proc)
        if sink is not None:
            stack.procs.stop(sink)
    return {
        "events": scale.big_spool,
        "depth_seen": int(depth),
        "prefill_s": round(fill_s, 1),
        "spool_mib": round(_disk_bytes(spool) / 2**20, 1),
        "startup_s": round(gateway.startup_s, 2),
        "idle_mib": idle.summary()["median_mib"],
        "relaying_peak_mib": relaying.summary()["peak_mib"],
        "relaying_median_mib": relaying.summary()["median_mib"],
        "hwm_mib": _mib(peak_ever),
        "watched_s": scale.relay_watch_s,
        "relayed": relayed,
        "relay_events_per_s": round(relayed / scale.relay_watch_s, 1),
    }


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _disk_bytes(spool: Path) -> int:
    return sum(p.stat().st_size for p in spool.parent.glob(spool.name + "*"))
