"""A pull-mode relay client for the benchmarks: the sidecar's lease → validate → ack loop.

It speaks relay-contract.md's pull mode like the sidecar's ``PullClient`` (signed lease with
long-poll, envelopes validated, signed ack of every id), minus the inbox commit, so a drain
benchmark measures the gateway's pull listener. ``loops`` clients may lease concurrently.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

import contract

LEASE_MAX = 100
LEASE_WAIT_S = 5


@dataclass
class PullTally:
    acked: int = 0
    leases: int = 0
    empty_leases: int = 0
    first_event_at: float | None = None
    last_ack_at: float | None = None


async def drain(
    url: str, secret: str, target: int, *, loops: int = 1, timeout_s: float = 600.0
) -> PullTally:
    """Lease and acknowledge until ``target`` events were acknowledged (or ``timeout_s`` passes)."""
    tally = PullTally()
    signer = contract.RelaySigner([secret])
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(trust_env=False) as session:
        workers = [asyncio.create_task(_loop(session, signer, url, target, tally, deadline)) for _ in range(loops)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    return tally


async def _loop(
    session: aiohttp.ClientSession,
    signer: contract.RelaySigner,
    url: str,
    target: int,
    tally: PullTally,
    deadline: float,
) -> None:
    while tally.acked < target and time.monotonic() < deadline:
        answer = await _post(session, signer, url + contract.LEASE_PATH, {"max": LEASE_MAX, "wait": LEASE_WAIT_S})
        events = contract.parse_events(answer)
        tally.leases += 1
        if not events:
            tally.empty_leases += 1
            continue
        if tally.first_event_at is None:
            tally.first_event_at = time.time()
        results = [contract.Result(id=event["id"], status="accepted", reply=None) for event in events]
        acked = await _post(session, signer, url + contract.ACK_PATH, {"results": results})
        tally.acked += int(acked["acked"])
        tally.last_ack_at = time.time()


async def _post(
    session: aiohttp.ClientSession, signer: contract.RelaySigner, url: str, payload: object
) -> dict[str, Any]:
    body = contract.dump_json(payload)
    async with session.post(url, data=body, headers=signer.headers(body)) as response:
        raw = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {raw[:200]!r}")
    answer = contract.load_json(raw)
    if not isinstance(answer, dict):
        raise RuntimeError(f"{url} answered {raw[:200]!r}")
    return answer
