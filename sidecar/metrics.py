"""Prometheus metrics of one sidecar process, on a registry owned by the app (no global state).

Labels carry account names, API names, app codes and outcomes only: never tokens, secrets,
openids or message bodies.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "SidecarMetrics"]


class SidecarMetrics:
    """Every metric the sidecar exports; features update the ones that concern them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "wxsc_http_requests_total", "HTTP requests answered, by route and status", ["route", "status"], registry=r
        )
        self.ready = Gauge(
            "wxsc_ready",
            "1 when /readyz would answer 200 (the store answers), else 0; refreshed by every /readyz and scrape",
            registry=r,
        )
        self.wechat_calls = Counter(
            "wxsc_wechat_calls_total",
            "WeChat API calls, by API and outcome (ok | errcode | network)",
            ["api", "outcome"],
            registry=r,
        )
        self.wechat_latency = Histogram(
            "wxsc_wechat_call_seconds",
            "Latency of WeChat API calls",
            ["api"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.token_fetches = Counter(
            "wxsc_token_fetches_total",
            "Access-token fetches from WeChat, by account and outcome",
            ["account", "outcome"],
            registry=r,
        )
        self.token_ttl = Gauge(
            "wxsc_token_ttl_seconds", "Seconds left on the cached access token, by account", ["account"], registry=r
        )
        self.token_invalidations = Counter(
            "wxsc_token_invalidations_total",
            "Invalid-token answers (40001/40014/42001), by account and whether the stored token was expired",
            ["account", "expired"],
            registry=r,
        )
        self.relay_events = Counter(
            "wxsc_relay_events_total",
            "Relayed events, by account and status (accepted | duplicate | failed)",
            ["account", "status"],
            registry=r,
        )
        self.relay_rejections = Counter(
            "wxsc_relay_rejections_total", "Relay requests refused, by reason", ["reason"], registry=r
        )
        self.pull_errors = Counter(
            "wxsc_pull_errors_total", "Pull-mode lease or ack failures, by stage", ["stage"], registry=r
        )
        self.messages = Counter(
            "wxsc_messages_total",
            "Messages sent to WeChat, by account, channel (template | wecom | custom) and outcome",
            ["account", "channel", "outcome"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
