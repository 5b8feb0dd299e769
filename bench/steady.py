"""Callbacks at a fixed rate (open loop), with the time each one was sent and answered.

wrk measures how much a server can take; this measures how long each event takes at a given,
realistic load. Requests are started on a fixed schedule whatever the answers do (an open
loop), so a slow gateway shows up as latency rather than as a lower send rate. The send times
are then matched with the sink's arrival times by event id (see ``bench.relay_bench``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.callbacks import Request


@dataclass
class Sent:
    event_id: str
    sent_at: float  # time.time() just before the request was written
    answered_at: float = 0.0
    status: int = 0


@dataclass
class SteadyRun:
    sent: list[Sent] = field(default_factory=list)
    late_starts: int = 0  # requests started more than 5 ms behind schedule (driver overloaded)


async def drive(base_url: str, requests: Sequence[Request], rate: float) -> SteadyRun:
    """Send ``requests`` at ``rate`` per second, each on schedule; wait for every answer."""
    run = SteadyRun()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(base_url, connector=connector, trust_env=False) as session:
        tasks: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        for n, request in enumerate(requests):
            due = start + n / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.005:
                run.late_starts += 1
            sent = Sent(request.event_id, time.time())
            run.sent.append(sent)
            tasks.append(asyncio.create_task(_send(session, request, sent)))
        await asyncio.gather(*tasks)
    return run


async def _send(session: aiohttp.ClientSession, request: Request, sent: Sent) -> None:
    try:
        async with session.post(
            request.path, data=request.body, headers={"Content-Type": "text/xml"}, timeout=aiohttp.ClientTimeout(30)
        ) as response:
            await response.read()
            sent.status = response.status
    except (aiohttp.ClientError, TimeoutError):
        sent.status = -1
    sent.answered_at = time.time()


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
