"""How big a benchmark run is: ``FULL`` (``python -m bench``) or ``QUICK`` (``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    duration_s: float  # one wrk measurement
    warmup_s: float  # wrk before each measurement (connections, caches), not counted
    rounds: int  # the variants are measured this many times, interleaved; the best round counts
    connections: int  # wrk connections (WeChat's servers open many at once)
    max_rps: int  # distinct requests generated per second of measurement
    backlog: int  # events in the spool for the relay drain benchmarks
    steady_rates: tuple[float, ...]  # callbacks per second for the latency benchmark, one run each
    steady_s: float
    big_spool: int  # events in the spool for the memory benchmark
    relay_watch_s: float  # how long RSS is watched while the big spool drains

    @property
    def requests(self) -> int:
        return int(self.duration_s * self.max_rps)


FULL = Scale(
    name="full",
    duration_s=10,
    warmup_s=1,
    rounds=3,
    connections=64,
    max_rps=12_000,
    backlog=100_000,
    steady_rates=(1000, 500),
    steady_s=20,
    big_spool=1_000_000,
    relay_watch_s=15,
)

QUICK = Scale(
    name="quick",
    duration_s=3,
    warmup_s=1,
    rounds=1,
    connections=64,
    max_rps=12_000,
    backlog=20_000,
    steady_rates=(1000, 500),
    steady_s=5,
    big_spool=100_000,
    relay_watch_s=5,
)
