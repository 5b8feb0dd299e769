"""``python -m bench.inbox_bench [--events N] [--batch B] [--concurrency C] [--mode M] [--kind K]``

How fast the real sidecar takes a relay backlog into its exactly-once inbox: ``python -m
sidecar`` with a real SQLite store (WAL, ``synchronous = FULL``) in a temporary directory,
pinned to the server core, fed from this process on the load core.

* push — signed ``POST /relay/v1/events`` with ``--batch`` events each (the gateway sends up
  to 100), ``--concurrency`` requests in flight; timed from the first request to the last answer;
* pull — the sidecar's pull client long-polls a fake gateway pull listener served here, which
  leases what is left of the backlog (the sidecar asks for up to 100) and counts the acks;
  timed from the first lease handed out to the ack of the last event.

The events (``--kind``) come from distinct openids: ``unsubscribe`` (the default) runs a built-in
handler (a conditional UPDATE on the bindings, in a savepoint) for each event; ``text`` and
``click`` have no handler, like most real traffic, so the inbox's own work is all. Every run checks
what it measured: each event answered ``accepted`` once, one inbox row per event and one
``event processed`` line per event in the sidecar's log. Figures, never timed assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.procs import PYTHON, SERVER_CORE, Processes, free_port, pin_self, wait_http
from contract import (
    ACK_PATH,
    LEASE_PATH,
    PUSH_PATH,
    Envelope,
    RelaySigner,
    RelayVerifier,
    dump_json,
    load_json,
    make_envelope,
    parse_results,
)

# unsubscribe runs a built-in handler (savepoint + UPDATE); text and CLICK, the bulk of the
# chaos run's traffic, have no handler registered, so their only store work is the inbox's.
KINDS: dict[str, Callable[[int], dict[str, str]]] = {
    "unsubscribe": lambda n: {"MsgType": "event", "Event": "unsubscribe"},
    "text": lambda n: {"MsgType": "text", "Content": f"告警 #{n}", "MsgId": str(10_000_000_000 + n)},
    "click": lambda n: {"MsgType": "event", "Event": "CLICK", "EventKey": f"menu-{n % 5}"},
}
SECRET = "whsec_" + "YmVuY2gtaW5ib3gtc2VjcmV0LTI0Ynl0ZXMh"  # base64 of 27 bytes, bench only
HANDLED = "event processed"  # sidecar.relay.inbox logs it once per event, after the commit


def config_text(port: int, mode: str, pull_url: str = "") -> str:
    """A sidecar config: one MP account, WeChat unreachable (never called), store beside it."""
    pull = f'pull_url = "{pull_url}"\nlease_wait_s = 5\nbackoff_initial_s = 0.05\n' if mode == "pull" else ""
    return f"""
log_level = "info"

[server]
listen = "127.0.0.1:{port}"

[store]
url = "sqlite:///sidecar.sqlite3"

[relay]
mode = "{mode}"
secrets = ["{SECRET}"]
{pull}
[wechat]
mp_api = "http://127.0.0.1:9/mp"
wecom_api = "http://127.0.0.1:9/wecom"

[[accounts]]
name = "main"
kind = "mp"
app_id = "wx1234567890abcdef"
app_secret = "bench-app-secret"
template_id = "tmpl-1"
default = true
"""


def make_events(count: int, kind: str = "unsubscribe") -> list[Envelope]:
    """``count`` distinct callbacks (distinct openids, so distinct event ids) of one ``kind``."""
    received = datetime.now(UTC)
    events = []
    for n in range(count):
        message = {
            "ToUserName": "gh_bench",
            "FromUserName": f"oBench{n:012d}",
            "CreateTime": str(1_700_000_000 + n),
            **KINDS[kind](n),
        }
        events.append(make_envelope("main", "mp", "safe", message, received))
    return events


def batches(events: list[Envelope], size: int) -> list[list[Envelope]]:
    return [events[i : i + size] for i in range(0, len(events), size)]


# push --------------------------------------------------------------------------------------------


async def push_all(url: str, events: list[Envelope], batch: int, concurrency: int) -> tuple[float, int]:
    """POST every batch (``concurrency`` in flight); returns (seconds, events answered accepted)."""
    signer = RelaySigner([SECRET])
    pending = deque(batches(events, batch))
    accepted = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while pending:
            chunk = pending.popleft()
            body = dump_json({"events": chunk})
            async with session.post(url, data=body, headers=signer.headers(body)) as response:
                answer = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"push answered {response.status}: {answer[:200]!r}")
            results = parse_results(load_json(answer))
            if [r["id"] for r in results] != [e["id"] for e in chunk]:
                raise RuntimeError("push results do not match the batch")
            accepted += sum(1 for r in results if r["status"] == "accepted")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - started, accepted


def run_push(workdir: Path, events: list[Envelope], batch: int, concurrency: int) -> dict[str, Any]:
    port = free_port()
    config = workdir / "sidecar.toml"
    config.write_text(config_text(port, "push"), encoding="utf-8")
    with Processes(workdir) as procs:
        proc = procs.start("sidecar", [PYTHON, "-m", "sidecar", "--config", str(config)], core=SERVER_CORE)
        wait_http(proc, f"http://127.0.0.1:{port}/readyz")
        seconds, accepted = asyncio.run(push_all(f"http://127.0.0.1:{port}{PUSH_PATH}", events, batch, concurrency))
        procs.stop(proc)
    return summary("push", workdir, events, seconds, accepted, batch=batch, concurrency=concurrency)


# pull --------------------------------------------------------------------------------------------


class FakePullListener:
    """The gateway's pull listener, reduced to a backlog: leases hand it out, acks count it."""

    def __init__(self, events: list[Envelope]) -> None:
        self._backlog = deque(events)
        self._verifier = RelayVerifier([SECRET])
        self.total = len(events)
        self.accepted = 0
        self.acked = 0
        self.first_lease: float | None = None
        self.last_ack: float | None = None
        self.done = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(LEASE_PATH, self.lease)
        app.router.add_post(ACK_PATH, self.ack)
        return app

    async def _body(self, request: web.Request) -> Any:
        body = await request.read()
        self._verifier.verify(body, request.headers)
        return load_json(body)

    async def lease(self, request: web.Request) -> web.Response:
        asked = int((await self._body(request))["max"])
        if not self._backlog:
            await asyncio.sleep(0.2)  # a short long-poll: the run is over or nearly
        leased = [self._backlog.popleft() for _ in range(min(asked, len(self._backlog)))]
        if leased and self.first_lease is None:
            self.first_lease = time.perf_counter()
        return web.Response(body=dump_json({"events": leased, "lease_seconds": 30}), content_type="application/json")

    async def ack(self, request: web.Request) -> web.Response:
        results = parse_results(await self._body(request))
        self.acked += len(results)
        self.accepted += sum(1 for r in results if r["status"] == "accepted")
        if self.acked >= self.total:
            self.last_ack = time.perf_counter()
            self.done.set()
        return web.json_response({"acked": len(results)})


async def serve_pull(
    listener: FakePullListener, port: int, start_sidecar: Callable[[], None], timeout_s: float
) -> None:
    runner = web.AppRunner(listener.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.get_running_loop().run_in_executor(None, start_sidecar)
        await asyncio.wait_for(listener.done.wait(), timeout_s)
    finally:
        await runner.cleanup()


def run_pull(workdir: Path, events: list[Envelope], timeout_s: float) -> dict[str, Any]:
    port, gateway_port = free_port(), free_port()
    config = workdir / "sidecar.toml"
    config.write_text(config_text(port, "pull", f"http://127.0.0.1:{gateway_port}"), encoding="utf-8")
    listener = FakePullListener(events)
    with Processes(workdir) as procs:

        def start() -> None:
            proc = procs.start("sidecar", [PYTHON, "-m", "sidecar", "--config", str(config)], core=SERVER_CORE)
            wait_http(proc, f"http://127.0.0.1:{port}/readyz")

        asyncio.run(serve_pull(listener, gateway_port, start, timeout_s))
    assert listener.first_lease is not None and listener.last_ack is not None
    seconds = listener.last_ack - listener.first_lease
    return summary("pull", workdir, events, seconds, listener.accepted, batch=100, concurrency=1)


# checks and report -------------------------------------------------------------------------------


def summary(
    mode: str, workdir: Path, events: list[Envelope], seconds: float, accepted: int, *, batch: int, concurrency: int
) -> dict[str, Any]:
    """The rate, after checking that every event was processed exactly once."""
    rows = inbox_rows(workdir / "sidecar.sqlite3")
    lines = processed_lines(workdir / "sidecar.log")
    if not accepted == rows == lines == len(events):
        raise RuntimeError(f"{mode}: {len(events)} sent, {accepted} accepted, {rows} inbox rows, {lines} log lines")
    return {
        "mode": mode,
        "events": len(events),
        "batch": batch,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "events_per_s": round(len(events) / seconds, 1),
    }


def inbox_rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM inbox WHERE processed_at IS NOT NULL").fetchone()[0])


def processed_lines(path: Path) -> int:
    count = 0
    with path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            if line.startswith("{") and json.loads(line).get("msg") == HANDLED:
                count += 1
    return count


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inbox_bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--events", type=int, default=10_000, help="backlog size per run (default 10000)")
    parser.add_argument("--batch", type=int, default=100, help="events per push request (1-100, default 100)")
    parser.add_argument("--concurrency", type=int, default=1, help="push requests in flight (default 1)")
    parser.add_argument("--mode", choices=("push", "pull", "both"), default="both")
    parser.add_argument("--kind", choices=tuple(KINDS), default="unsubscribe", help="what the events are")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on a pull run after this many s")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.batch <= 100:
        print("--batch must be 1 to 100 (the relay contract's limit)", file=sys.stderr)
        return 2
    pin_self()
    events = make_events(args.events, args.kind)
    figures = []
    for mode in ("push", "pull") if args.mode == "both" else (args.mode,):
        with tempfile.TemporaryDirectory(prefix=f"inbox-bench-{mode}-") as tmp:
            workdir = Path(tmp)
            if mode == "push":
                figure = run_push(workdir, events, args.batch, args.concurrency)
            else:
                figure = run_pull(workdir, events, args.timeout)
        figures.append(figure)
        print(
            f"{figure['mode']} {args.kind}: {figure['events_per_s']:.0f} events/s "
            f"({figure['events']} events in {figure['seconds']:.2f} s, batch {figure['batch']}, "
            f"concurrency {figure['concurrency']})"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
