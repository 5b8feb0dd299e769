"""Prometheus metrics of one gateway process, on a registry owned by the app (no global state).

Labels carry account names, modes and outcomes only: never tokens, keys, openids or bodies.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    """Every metric the gateway exports. Spool gauges are refreshed by the spool's owner."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.callbacks = Counter(
            "wxgw_callbacks_total",
            "WeChat callbacks answered, by account, mode (plain|compat|safe|verify) and outcome",
            ["account", "mode", "outcome"],
            registry=r,
        )
        self.callback_seconds = Histogram(
            "wxgw_callback_seconds",
            "Time from a callback reaching its handler to the answer, by account and mode (WeChat waits 5 s)",
            ["account", "mode"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0),
            registry=r,
        )
        self.ready = Gauge(
            "wxgw_ready",
            "1 when /readyz would answer 200, else 0; refreshed by every /readyz and every scrape",
            registry=r,
        )
        self.spool_depth = Gauge("wxgw_spool_depth", "Events spooled and not yet acknowledged", registry=r)
        self.oldest_unacked_age = Gauge(
            "wxgw_oldest_unacked_age_seconds", "Age of the oldest unacknowledged event (0 when none)", registry=r
        )
        self.commit_latency = Histogram(
            "wxgw_spool_commit_seconds",
            "Time from a callback's commit request to its durable group commit",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.commit_batch = Histogram(
            "wxgw_spool_commit_batch_size",
            "Events per group commit (one transaction, one fsync)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self.relay_attempts = Counter(
            "wxgw_relay_attempts_total", "Relay requests made (push posts or pull leases served)", ["mode"], registry=r
        )
        self.relay_failures = Counter(
            "wxgw_relay_failures_total", "Relay requests that failed, by reason", ["mode", "reason"], registry=r
        )
        self.relayed = Counter("wxgw_relayed_events_total", "Events acknowledged by the sidecar", ["mode"], registry=r)
        self.replies = Counter(
            "wxgw_passive_replies_total",
            "Passive replies from the sidecar, by outcome (sent|late)",
            ["account", "outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
