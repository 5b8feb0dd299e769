"""The Grafana dashboard: the committed JSON is exactly what devtools/dashboard.py generates, and
its queries name only metrics the tiers export (tests/ops/test_prometheus_e2e.py runs them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from devtools import dashboard
from gateway.metrics import GatewayMetrics
from sidecar.metrics import SidecarMetrics
from tests.ops.test_alert_rules import exported_series


def test_dashboard_committed_json_matches_the_generator() -> None:
    assert dashboard.OUTPUT.read_text(encoding="utf-8") == dashboard.render(), "run python -m devtools.dashboard"


def test_dashboard_check_of_a_drifted_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drifted = tmp_path / "wx-notify.json"
    drifted.write_text(dashboard.render().replace("Spool depth", "Spool size"), encoding="utf-8")

    assert dashboard.main(["--check", "--output", str(drifted)]) == 1
    assert "out of date" in capsys.readouterr().err


def test_dashboard_written_file_passes_its_own_check(tmp_path: Path) -> None:
    target = tmp_path / "wx-notify.json"

    assert dashboard.main(["--output", str(target)]) == 0
    assert dashboard.main(["--check", "--output", str(target)]) == 0


def test_dashboard_queries_name_only_metrics_the_tiers_export() -> None:
    exported = exported_series(GatewayMetrics().registry) | exported_series(SidecarMetrics().registry)
    for title, expr in dashboard.queries(json.loads(dashboard.render())):
        for name in re.findall(r"\bwx(?:gw|sc)_[a-z_]+", expr):
            assert name in exported, f"panel {title!r} uses {name}, which neither tier exports"


def test_dashboard_every_panel_has_a_query_a_unique_id_and_the_datasource_variable() -> None:
    model = json.loads(dashboard.render())
    panels = [p for p in model["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in model["panels"]}) == len(model["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
