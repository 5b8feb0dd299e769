"""A minimal relay receiver for the benchmarks: ``python -m bench.sink --port N``.

It does what the sidecar's push endpoint must do before it may acknowledge anything (verify the
Standard Webhooks signature with the relay secret, validate the envelopes, ids included) and
answers ``accepted`` for every new event and ``duplicate`` for a repeat, without a reply, so a
benchmark measures the gateway rather than the sidecar's inbox. It records when each event id
first arrived (``time.time()``), which the latency benchmark reads from ``GET /arrivals``.

The relay secret comes from the environment (``BENCH_RELAY_SECRET``), never the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiohttp import web

import contract

SECRET_ENV = "BENCH_RELAY_SECRET"


@dataclass
class Tally:
    """What the sink has seen: first arrival per event id, and request/duplicate counts."""

    arrivals: dict[str, float] = field(default_factory=dict)
    requests: int = 0
    duplicates: int = 0
    refused: int = 0


TALLY: web.AppKey[Tally] = web.AppKey("tally", Tally)
VERIFIER: web.AppKey[contract.RelayVerifier] = web.AppKey("verifier", contract.RelayVerifier)


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    tally = request.app[TALLY]
    try:
        request.app[VERIFIER].verify(body, request.headers)
        events = contract.parse_events(contract.load_json(body))
    except contract.SignatureError as exc:
        tally.refused += 1
        return web.json_response({"error": str(exc)}, status=401)
    except contract.ContractError as exc:
        tally.refused += 1
        return web.json_response({"error": str(exc)}, status=400)
    now = time.time()
    tally.requests += 1
    results: list[contract.Result] = []
    for event in events:
        if event["id"] in tally.arrivals:
            tally.duplicates += 1
            results.append(contract.Result(id=event["id"], status="duplicate", reply=None))
        else:
            tally.arrivals[event["id"]] = now
            results.append(contract.Result(id=event["id"], status="accepted", reply=None))
    return web.Response(body=contract.dump_json({"results": results}), content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    tally = request.app[TALLY]
    times = tally.arrivals.values()
    return web.json_response(
        {
            "received": len(tally.arrivals),
            "requests": tally.requests,
            "duplicates": tally.duplicates,
            "refused": tally.refused,
            "first": min(times, default=None),
            "last": max(times, default=None),
        }
    )


async def arrivals(request: web.Request) -> web.Response:
    return web.json_response(request.app[TALLY].arrivals)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(secret: str) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[TALLY] = Tally()
    app[VERIFIER] = contract.RelayVerifier([secret])
    app.router.add_post(contract.PUSH_PATH, receive)
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", arrivals)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(port: int, secret: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(create_app(secret), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV, "")
    if contract.secret_problem(secret):
        print(f"{SECRET_ENV} must hold a whsec_ relay secret", file=sys.stderr)
        return 2
    asyncio.run(serve(args.port, secret))
    return 0


if __name__ == "__main__":
    sys.exit(main())
