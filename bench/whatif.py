"""What would a proposed gateway change buy? ``python -m bench.whatif [--quick] VARIANT...``

Each VARIANT is ``base`` or a comma-separated list of ``bench.whatif_boot`` patches, plus the
configuration-only ``no-reply-wait`` (``reply_budget = 0``: answer right after the durable
commit instead of waiting for the sidecar's acknowledgement). The variants run interleaved,
round by round, exactly like the gateway variant of ``python -m bench``, and the best round of
each is compared with ``base``. Example::

    python -m bench.whatif base no-reply-lookup expat-fields quiet-log \\
        no-reply-lookup,expat-fields,quiet-log no-reply-wait

Results go to ``bench/results.json`` under ``whatif``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.callbacks import MSG_ID_BASE, PATH, generate, write_requests
from bench.procs import PYTHON, CpuMeter, Processes, pin_self
from bench.report import save
from bench.scale import FULL, QUICK, Scale
from bench.stack import GatewayOptions, Stack
from bench.whatif_boot import PATCHES
from bench.wrk import run_wrk, write_script

CONFIG_ONLY = {"no-reply-wait"}


def run(variants: Sequence[str], scale: Scale, workdir: Path) -> dict[str, Any]:
    measured, warmup = workdir / "requests.txt", workdir / "warmup.txt"
    write_requests(measured, generate(scale.requests, first_msg_id=MSG_ID_BASE))
    write_requests(warmup, generate(int(scale.warmup_s * scale.max_rps), first_msg_id=MSG_ID_BASE + 500_000_000))
    script = write_script(workdir)
    rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    with Processes(workdir) as procs:
        for number in range(1, scale.rounds + 1):
            for variant in variants:
                names = variant.split(",")
                patches = [n for n in names if n not in CONFIG_ONLY]
                boot = [PYTHON, "-m", "bench.whatif_boot", ",".join(patches) or "base", "--"]
                stack = Stack(workdir, procs, gateway_argv=boot)
                sink, sink_port = stack.start_sink()
                options = GatewayOptions(reply_budget_s=0.0 if "no-reply-wait" in names else 3.0)
                gateway = stack.start_gateway(options, sink_port=sink_port)
                try:
                    url = gateway.url + PATH
                    run_wrk(url, warmup, script=script, duration_s=scale.warmup_s, connections=scale.connections)
                    with CpuMeter(gateway.proc.pid) as cpu:
                        result = run_wrk(
                            url, measured, script=script, duration_s=scale.duration_s, connections=scale.connections
                        )
                finally:
                    procs.stop(gateway.proc)
                    procs.stop(sink)
                figures = {**result.as_dict(), **cpu.summary(result.requests)}
                rounds[variant].append(figures)
                print(
                    f"round {number} {variant:44s} {result.rps:7.0f} req/s  p50 {result.p50_ms:6.1f} ms  "
                    f"p99 {result.p99_ms:6.1f} ms  {figures['cpu_us_per_req']} us/req  errors {result.errors}",
                    flush=True,
                )
    best = {v: max(runs, key=lambda f: f["rps"]) for v, runs in rounds.items()}
    base = best.get("base", best[variants[0]])
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "variants": [
            {
                "variant": v,
                **best[v],
                "rps_vs_base": round(best[v]["rps"] / base["rps"], 2) if base["rps"] else 0.0,
                "all_rounds": rounds[v],
            }
            for v in variants
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.whatif", description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help=f"base, or patches joined by commas: {', '.join(PATCHES)}, "
                        "no-reply-wait")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    known = {"base", *PATCHES, *CONFIG_ONLY}
    unknown = {n for v in args.variants for n in v.split(",")} - known
    if unknown:
        parser.error(f"unknown patch(es): {', '.join(sorted(unknown))}")
    pin_self()
    workdir = Path(tempfile.mkdtemp(prefix="wxwhatif-"))
    started = time.monotonic()
    try:
        results = run(args.variants, QUICK if args.quick else FULL, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    for v in results["variants"]:
        print(f"{v['variant']:44s} {v['rps']:7.0f} req/s  x{v['rps_vs_base']:.2f}  {v['cpu_us_per_req']} us/req  "
              f"p50 {v['p50_ms']:.1f} ms  p99 {v['p99_ms']:.1f} ms")
    save({"whatif": results})
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
