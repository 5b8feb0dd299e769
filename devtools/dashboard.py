"""The Grafana dashboard of both tiers, as code: ``python -m devtools.dashboard`` writes
deploy/grafana/wx-notify.json, ``--check`` fails when the committed JSON has drifted from it.

Built with Grafana's own ``grafana-foundation-sdk`` (typed builders for dashboards, panels and
Prometheus queries), so the JSON has the shape Grafana's schema gives it rather than one
hand-written here. The panels are plain data (:data:`ROWS`): one place to read what is shown
and with which PromQL. Queries use only the metrics the tiers export (gateway/metrics.py,
sidecar/metrics.py) and the scrape jobs ``wx-gateway`` and ``wx-sidecar`` of
deploy/prometheus/prometheus.example.yml; tests/ops runs every query against a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, Row, ThresholdsConfig
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

OUTPUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "wx-notify.json"
UID = "wx-notify"
RATE = "$__rate_interval"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    """One panel: what it shows, in which unit, how wide (of 24 columns)."""

    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 12


def rate(selector: str, by: str) -> str:
    return f"sum by ({by}) (rate({selector}[{RATE}]))"


def quantile(q: float, bucket: str, by: str) -> str:
    return f"histogram_quantile({q}, sum by (le, {by}) (rate({bucket}[{RATE}])))"


ROWS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Health",
        (
            PanelSpec(
                "Tiers up",
                "1 when Prometheus could scrape the tier (alert WxGatewayDown / WxSidecarDown).",
                (Query('up{job=~"wx-gateway|wx-sidecar"}', "{{job}} {{instance}}"),),
                kind="stat",
                width=8,
            ),
            PanelSpec(
                "Gateway ready",
                "1 when /readyz would answer 200: spool writable, relay not lagging (WxGatewayNotReady).",
                (Query("wxgw_ready", "{{instance}}"),),
                kind="stat",
                width=8,
            ),
            PanelSpec(
                "Sidecar ready",
                "1 when /readyz would answer 200: the store answers (WxSidecarNotReady).",
                (Query("wxsc_ready", "{{instance}}"),),
                kind="stat",
                width=8,
            ),
        ),
    ),
    (
        "Gateway: WeChat callbacks",
        (
            PanelSpec(
                "Callbacks by outcome",
                "Answered callbacks per second: accepted, replied, duplicate, verified, and every refusal by kind.",
                (Query(rate("wxgw_callbacks_total", "outcome"), "{{outcome}}"),),
                unit="reqps",
            ),
            PanelSpec(
                "Callbacks by account and mode",
                "plain, compat and safe mode messages, and URL verifications (verify), per account.",
                (Query(rate("wxgw_callbacks_total", "account, mode"), "{{account}} {{mode}}"),),
                unit="reqps",
            ),
            PanelSpec(
                "Answer latency",
                "From the handler to the answer. WeChat gives up at 5 s; a passive reply waits up to reply_budget.",
                (
                    Query(quantile(0.5, "wxgw_callback_seconds_bucket", "account"), "p50 {{account}}"),
                    Query(quantile(0.99, "wxgw_callback_seconds_bucket", "account"), "p99 {{account}}"),
                ),
                unit="s",
            ),
            PanelSpec(
                "Passive replies",
                "Replies from the sidecar that made it into the answer (sent) or came after it (late).",
                (Query(rate("wxgw_passive_replies_total", "account, outcome"), "{{account}} {{outcome}}"),),
                unit="ops",
            ),
        ),
    ),
    (
        "Gateway: spool and relay",
        (
            PanelSpec(
                "Spool depth",
                "Events committed and not yet acknowledged by the sidecar (WxSpoolBacklogGrowing).",
                (Query("wxgw_spool_depth", "{{instance}}"),),
                width=8,
            ),
            PanelSpec(
                "Relay lag (oldest unacknowledged event)",
                "Age of the oldest event the sidecar has not acknowledged; 0 when none (WxRelayLagging).",
                (Query("wxgw_oldest_unacked_age_seconds", "{{instance}}"),),
                unit="s",
                width=8,
            ),
            PanelSpec(
                "Spool commit latency",
                "From a callback's commit request to its durable group commit (one fsync per group).",
                (Query(quantile(0.99, "wxgw_spool_commit_seconds_bucket", "instance"), "p99 {{instance}}"),),
                unit="s",
                width=8,
            ),
            PanelSpec(
                "Relay throughput",
                "Events acknowledged by the sidecar, and relay requests made (push posts or pull leases served).",
                (
                    Query(rate("wxgw_relayed_events_total", "mode"), "relayed {{mode}}"),
                    Query(rate("wxgw_relay_attempts_total", "mode"), "requests {{mode}}"),
                ),
                unit="ops",
            ),
            PanelSpec(
                "Relay failures by reason",
                "Push requests that acknowledged nothing, pull requests refused (WxRelayFailing).",
                (Query(rate("wxgw_relay_failures_total", "mode, reason"), "{{mode}} {{reason}}"),),
                unit="ops",
            ),
        ),
    ),
    (
        "Sidecar: relayed events in",
        (
            PanelSpec(
                "Inbox by status",
                "Relayed events: accepted (handled once), duplicate (already held), failed (handler error).",
                (Query(rate("wxsc_relay_events_total", "account, status"), "{{account}} {{status}}"),),
                unit="ops",
            ),
            PanelSpec(
                "Relay requests refused, pull errors",
                "Pushes the sidecar refused (bad signature, malformed) and its failed pull leases or acks.",
                (
                    Query(rate("wxsc_relay_rejections_total", "reason"), "refused: {{reason}}"),
                    Query(rate("wxsc_pull_errors_total", "stage"), "pull {{stage}} failed"),
                ),
                unit="ops",
            ),
        ),
    ),
    (
        "Sidecar: sends and WeChat",
        (
            PanelSpec(
                "Messages by account, channel and outcome",
                "Messages handed to WeChat: template (MP), wecom (app messages), custom (customer service).",
                (
                    Query(
                        rate("wxsc_messages_total", "account, channel, outcome"),
                        "{{account}} {{channel}} {{outcome}}",
                    ),
                ),
                unit="ops",
            ),
            PanelSpec(
                "Send failure ratio",
                "Failed messages as a share of all, per account and channel (WxSendFailureRatioHigh).",
                (
                    Query(
                        rate('wxsc_messages_total{outcome="failed"}', "account, channel")
                        + " / "
                        + rate("wxsc_messages_total", "account, channel"),
                        "{{account}} {{channel}}",
                    ),
                ),
                unit="percentunit",
            ),
            PanelSpec(
                "WeChat API calls by errcode",
                "Each API call's outcome: ok, network, malformed, or WeChat's errcode (45009 quota, "
                "43004/40003/81013 invalid user, 40001 token not latest).",
                (Query(rate("wxsc_wechat_calls_total", "api, outcome"), "{{api}} {{outcome}}"),),
                unit="ops",
            ),
            PanelSpec(
                "WeChat API latency",
                "p99 of WeChat API calls, per API.",
                (Query(quantile(0.99, "wxsc_wechat_call_seconds_bucket", "api"), "p99 {{api}}"),),
                unit="s",
            ),
        ),
    ),
    (
        "Sidecar: tokens and bindings",
        (
            PanelSpec(
                "Access-token fetches",
                "Fetches from WeChat by outcome: ok, retryable (retried with backoff), failed (WxTokenRefreshFailing).",
                (Query(rate("wxsc_token_fetches_total", "account, outcome"), "{{account}} {{outcome}}"),),
                unit="ops",
                width=8,
            ),
            PanelSpec(
                "Tokens invalidated by WeChat",
                "40001/40014/42001 answers; expired=no means someone else fetched a new token "
                "(WxTokenInvalidationStorm).",
                (Query(rate("wxsc_token_invalidations_total", "account, expired"), "{{account}} expired={{expired}}"),),
                unit="ops",
                width=8,
            ),
            PanelSpec(
                "Binding requests",
                "Binding links issued, binding pages, QR codes, WeCom logins and status polls, by route and status.",
                (
                    Query(
                        rate(
                            'wxsc_http_requests_total{route=~"/api/v1/binding-links|/bind/.*|'
                            '/console/user_center/weixin/.*"}',
                            "route, status",
                        ),
                        "{{route}} {{status}}",
                    ),
                ),
                unit="reqps",
                width=8,
            ),
            PanelSpec(
                "Sidecar HTTP requests by status",
                "Every request the sidecar answered (BlueKing API, binding, relay, health), by status "
                "(WxSidecarServerErrors).",
                (Query(rate("wxsc_http_requests_total", "status"), "{{status}}"),),
                unit="reqps",
                width=24,
            ),
        ),
    ),
)


def _target(query: Query, ref: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref)


def _panel(spec: PanelSpec, panel_id: int) -> timeseries.Panel | stat.Panel:
    panel: timeseries.Panel | stat.Panel
    if spec.kind == "stat":
        panel = _up_down_stat()
    else:
        legend = (
            VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM).show_legend(True)
        )
        panel = timeseries.Panel().legend(legend).fill_opacity(10)
    panel = panel.id(panel_id).title(spec.title).description(spec.description).unit(spec.unit)
    panel = panel.datasource(DATASOURCE).height(8).span(spec.width)
    for index, query in enumerate(spec.queries):
        panel = panel.with_target(_target(query, chr(ord("A") + index)))
    return panel


def _up_down_stat() -> stat.Panel:
    """A stat of 0/1 series (up, ready): the last value of each, red at 0 and green at 1."""
    red_to_green = ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=None, color="red"), Threshold(value=1, color="green")]
    )
    return (
        stat.Panel()
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(BigValueColorMode.BACKGROUND)
        .graph_mode(BigValueGraphMode.NONE)
        .thresholds(red_to_green)
    )


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (a plain dict)."""
    board = (
        DashboardBuilder("wx-notify-gateway")
        .uid(UID)
        .description("WeChat callbacks, spool and relay (gateway); inbox, sends, tokens and bindings (sidecar)")
        .tags(["wx-notify", "wechat"])
        .refresh("30s")
        .time("now-3h", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    panel_id = 0
    for title, panels in ROWS:
        panel_id += 1
        board = board.with_row(Row(title).id(panel_id))
        for spec in panels:
            panel_id += 1
            board = board.with_panel(_panel(spec, panel_id))
    encoded: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    """The file's text: stable key order and indentation, so a diff shows only real changes."""
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel of a dashboard JSON model."""
    return [(p["title"], t["expr"]) for p in model["panels"] if p.get("type") != "row" for t in p["targets"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where to write (default {OUTPUT})")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m devtools.dashboard", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(queries(json.loads(text)))} queries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
