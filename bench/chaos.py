"""``make chaos``: thousands of WeChat callbacks while the sidecar and the gateway are SIGKILLed.

The whole system runs as real processes on loopback (devtools.stack, with three MP accounts in
plain, compat and safe mode and one WeCom corp). The emulator plays WeChat: every callback gets
5 s per attempt and is retried with the identical query and body until a 200. Meanwhile the
sidecar is killed and restarted several times and the gateway once, on the same SQLite files.
Once the relay has drained, everything is stopped and counted from the files themselves:

    sent, answered, spooled, relayed, processed, duplicates, lost

and the run passes (exit 0) only when every answered event was processed exactly once::

    python -m bench.chaos                     # 10,000 callbacks, push relay
    python -m bench.chaos --pull --seed 7     # pull relay, another schedule
    python -m bench.chaos --quick             # 600 callbacks, two sidecar kills, one gateway kill
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.chaos_load import Inflicted, Load, inflict, plan_events, schedule
from bench.chaos_stack import ChaosStack
from bench.chaos_tally import Observed, Sent, Tally, read_handled, read_repeats, tally
from contract import event_id
from devtools.emulator.client import EmulatorClient
from devtools.stack import StackOptions
from devtools.stack_config import WECOM_ACCOUNT, RelayMode

USERS = tuple(f"chaos{n:02d}" for n in range(12))
MAX_IN_FLIGHT = 100
EMULATOR_POOL = (
    "the emulator's pusher holds at most 100 connections (aiohttp's default pool) and the wait for one "
    "counts against WeChat's 5 s, so more in flight would time out callbacks the gateway never saw"
)


@dataclass(frozen=True)
class ChaosOptions:
    events: int = 10_000
    seed: int = 1
    relay_mode: RelayMode = "push"
    concurrency: int = 64  # callbacks WeChat has in flight at once
    sidecar_kills: int = 4
    gateway_kills: int = 1
    retry_delay_s: float = 2.0  # between WeChat's attempts: after a timeout WeChat retries at once
    # (5 s apart in all); after a refused connection a pause, or a restarting gateway is never reached
    reply_budget_s: float = 3.0  # the gateway's default wait for a passive reply
    lease_s: int = 5  # pull mode: events leased to a killed sidecar come back after this
    drain_timeout_s: float = 180.0


QUICK = {"events": 600, "sidecar_kills": 2, "gateway_kills": 1}


@dataclass
class ChaosResult:
    options: ChaosOptions
    tally: Tally
    faults: list[Inflicted]
    send_s: float  # first callback to the last one done
    drain_s: float  # from then until the spool held nothing unacknowledged
    total_s: float  # start-up to stopped
    drained: bool
    workdir: Path
    machine: str  # with the load average when the run started
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.drained and self.tally.ok

    def report(self) -> str:
        o = self.options
        rate = self.tally.sent / self.send_s if self.send_s else 0.0
        lines = [
            f"chaos: {o.relay_mode} relay, {o.events} callbacks (seed {o.seed}, {o.concurrency} in flight), "
            f"{o.sidecar_kills} sidecar kill(s), {o.gateway_kills} gateway kill(s) — {self.machine}",
            *(
                f"  {f.killed_s:7.2f} s  SIGKILL {f.tier:<7} after {f.at:>5} callbacks, ready again at {f.back_s:.2f} s"
                for f in self.faults
            ),
            f"  sending took {self.send_s:.1f} s ({rate:.0f} callbacks/s), draining {self.drain_s:.1f} s, "
            f"the whole run {self.total_s:.1f} s",
            self.tally.table(),
            *self.notes,
            "verdict: "
            + (
                "OK — every answered event was processed exactly once"
                if self.ok
                else f"FAILED — lost {self.tally.lost}, duplicates {self.tally.duplicates}, "
                f"unexpected {self.tally.unexpected}, drained {self.drained}; files kept in {self.workdir}"
            ),
        ]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "options": asdict(self.options),
            "machine": self.machine,
            "faults": [asdict(f) for f in self.faults],
            "send_s": round(self.send_s, 2),
            "drain_s": round(self.drain_s, 2),
            "total_s": round(self.total_s, 2),
            "drained": self.drained,
            "counts": self.tally.as_json(),
            "ok": self.ok,
        }


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]  # other work on the machine slows every tier down alike
    return f"{os.cpu_count()} CPU {model or platform.machine()}, Python {platform.python_version()}, load {load:.1f}"


async def run_chaos(options: ChaosOptions, workdir: Path) -> ChaosResult:
    """Start the system, make the callbacks while killing tiers, drain, stop, count."""
    rng = random.Random(options.seed)
    started, host = time.monotonic(), machine()
    stack_options = StackOptions(
        relay_mode=options.relay_mode,
        mp_mode="safe",
        reply_budget_s=options.reply_budget_s,
        push_retry_delay_s=options.retry_delay_s,
        lease_s=options.lease_s,
        lease_wait_s=2,
    )
    stack = ChaosStack(workdir, stack_options)
    timeout = aiohttp.ClientTimeout(total=120)
    async with stack, aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as http:
        emu = EmulatorClient(stack.urls.emulator, http)
        apps = list(stack.mp_accounts())
        for user in USERS:
            await emu.add_user(user, follows=apps, wecom={stack.ids.corp_id: user})
        load = Load(emu, plan_events(options.events, rng, apps, stack.ids.corp_id, USERS), options.concurrency)
        faults = schedule(options.events, rng, sidecar_kills=options.sidecar_kills, gateway_kills=options.gateway_kills)
        t0 = time.monotonic()
        _, inflicted = await asyncio.gather(load.run(), inflict(stack, faults, lambda: load.started, t0))
        send_s = time.monotonic() - t0
        drained = await _drain(stack, http, options.drain_timeout_s)
        drain_s = time.monotonic() - t0 - send_s
        pending = await emu.pushes(status="pending")
    await asyncio.to_thread(_dump, workdir / "pushes.jsonl", load.pushes)
    accounts = {**stack.mp_accounts(), stack.ids.corp_id: WECOM_ACCOUNT}
    sent = [_sent(push, accounts) for push in load.pushes]
    observed = await asyncio.to_thread(_observe, stack)
    notes = [f"  note: {len(pending)} pushes still pending in the emulator"] if pending else []
    total_s = time.monotonic() - started
    return ChaosResult(
        options, tally(sent, observed), inflicted, send_s, drain_s, total_s, drained, workdir, host, notes
    )


async def _drain(stack: ChaosStack, http: aiohttp.ClientSession, timeout_s: float) -> bool:
    """Wait until the gateway holds no unacknowledged event (the sidecar committed them all)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (await stack.metrics(http, "gateway")).value("wxgw_spool_depth") == 0:
                return True
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    return False


def _sent(push: dict[str, Any], accounts: dict[str, str]) -> Sent:
    """One push as WeChat experienced it; its event id is derived as both tiers derive it."""
    attempts = push["attempts"]
    answer = next((a for a in attempts if a["http_status"] == 200), None)
    return Sent(
        event_id=event_id(accounts[push["app"]], push["message"]),
        answered=answer is not None,
        attempts=len(attempts),
        answer_s=answer["elapsed_s"] if answer is not None else None,
        timeouts=sum(1 for a in attempts if str(a["error"]).startswith("no answer within")),
    )


def _dump(path: Path, pushes: list[dict[str, Any]]) -> None:
    """Every push as the emulator reported it (attempts, errors, timings), for a post-mortem."""
    with path.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(push, ensure_ascii=False) + "\n" for push in pushes)


def _observe(stack: ChaosStack) -> Observed:
    """Read both SQLite files read-only (the tiers are stopped) and the sidecar's log."""
    spool = {row[0]: (row[1], row[2]) for row in _rows(stack.gateway_spool, "SELECT id, state, attempts FROM events")}
    inbox = [(row[0], row[1]) for row in _rows(stack.sidecar_db, "SELECT event_id, error FROM inbox")]
    return Observed(
        spool=spool,
        inbox=inbox,
        handled=read_handled(stack.tiers["sidecar"].log_path),
        repeats=read_repeats(stack.tiers["gateway"].log_path),
    )


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10.0)
    try:
        return list(connection.execute(sql).fetchall())
    finally:
        connection.close()


def parse_args(argv: Sequence[str] | None = None) -> tuple[ChaosOptions, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, help="callbacks to make (default 10000; --quick: 600)")
    parser.add_argument("--seed", type=int, default=1, help="the plan and the kill schedule (default 1)")
    parser.add_argument("--pull", action="store_true", help="pull relay (the sidecar long-polls the gateway)")
    parser.add_argument("--quick", action="store_true", help="600 callbacks, two sidecar kills, one gateway kill")
    parser.add_argument(
        "--concurrency", type=int, default=64, help=f"callbacks in flight at once (default 64, at most {MAX_IN_FLIGHT})"
    )
    parser.add_argument(
        "--retry-delay", type=float, default=2.0, help="seconds between WeChat's attempts after a failure (default 2)"
    )
    parser.add_argument("--sidecar-kills", type=int, help="default 4 (--quick: 2)")
    parser.add_argument("--gateway-kills", type=int, help="default 1")
    parser.add_argument("--workdir", type=Path, help="keep configs, logs and databases here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir even when the run passes")
    parser.add_argument("--json", type=Path, help="also write the counts and timings to this file")
    args = parser.parse_args(argv)
    base = {**QUICK} if args.quick else {}
    for name in ("events", "sidecar_kills", "gateway_kills"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    if args.concurrency > MAX_IN_FLIGHT:
        parser.error(f"--concurrency over {MAX_IN_FLIGHT}: {EMULATOR_POOL}")
    if (
        min(base.get("events", 1), args.concurrency) < 1
        or min(base.get("sidecar_kills", 0), base.get("gateway_kills", 0)) < 0
    ):
        parser.error("--events and --concurrency must be positive, kill counts not negative")
    if args.retry_delay < 0:
        parser.error("--retry-delay must not be negative")
    options = ChaosOptions(
        seed=args.seed,
        relay_mode="pull" if args.pull else "push",
        concurrency=args.concurrency,
        retry_delay_s=args.retry_delay,
        **base,
    )
    return options, args


def main(argv: Sequence[str] | None = None) -> int:
    options, args = parse_args(argv)
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        print(f"--workdir {args.workdir} is not empty: a previous run's databases would be counted", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wx-chaos-"))
    result = asyncio.run(run_chaos(options, workdir))
    print(result.report())
    if args.json is not None:
        args.json.write_text(json.dumps(result.as_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if result.ok and args.workdir is None and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
