"""``python -m bench [--quick] [--only gateway|relay|memory]`` (``make bench``).

Runs the performance benchmarks of docs/PERFORMANCE.md, prints the tables, writes
``bench/results.json`` and the plot ``docs/perf-gateway.png``. Figures, never timed assertions:
this machine is shared and noisy, so every comparison is against baselines measured in the
same run. Every process started is stopped at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import gateway_bench, memory_bench, relay_bench, report
from bench.procs import Processes, pin_self
from bench.scale import FULL, QUICK, Scale
from bench.stack import Stack

PARTS = ("gateway", "relay", "memory")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": shutil.which("wrk") or "",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, spools)")
    parser.add_argument("--profile", action="store_true", help="gateway part: one more run under py-spy")
    parser.add_argument("--no-plot", action="store_true", help="do not write docs/perf-gateway.png")
    parser.add_argument("--results", type=Path, default=report.RESULTS, help="where to write the results JSON")
    parser.add_argument("--plot", type=Path, default=report.PLOT, help="where to write the plot")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("bench needs wrk and taskset on PATH", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("bench needs two cores: one for the server, one for the load", file=sys.stderr)
        return 2
    scale = QUICK if args.quick else FULL
    parts = args.only or list(PARTS)
    pin_self()
    signal.signal(signal.SIGTERM, _terminate)  # unwind through Processes: every child is stopped
    workdir = Path(tempfile.mkdtemp(prefix="wxbench-"))
    started = time.monotonic()
    results: dict[str, Any] = {}
    try:
        with Processes(workdir) as procs:
            stack = Stack(workdir, procs)
            for part in parts:
                print(f"[{part}] ({scale.name})", flush=True)
                section = _run_part(part, stack, scale, profile=args.profile)
                section["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
                section["scale"] = scale.name
                section["machine"] = machine()
                results[part] = section
    except KeyboardInterrupt:
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report.table(results))
    report.save(results, args.results)
    print(f"wrote {args.results}")
    if "gateway" in results and not args.no_plot:
        print(f"wrote {report.plot(results['gateway'], args.plot)}")
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _run_part(part: str, stack: Stack, scale: Scale, *, profile: bool) -> dict[str, Any]:
    def log(line: str) -> None:
        print(line, flush=True)

    if part == "gateway":
        return gateway_bench.run(stack, scale, log, profile=profile)
    if part == "relay":
        return relay_bench.run(stack, scale, log)
    return memory_bench.run(stack, scale, log)


if __name__ == "__main__":
    sys.exit(main())
