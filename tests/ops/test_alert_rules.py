"""The shipped alert rules: promtool accepts them and their unit tests pass, every alert has a
case that fires it and one that does not, names only metrics the tiers export, and points at a
runbook section that exists in docs/OPERATIONS.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from sidecar.metrics import SidecarMetrics
from tests.ops.prom import (
    EXAMPLE_CONFIG,
    OPERATIONS,
    RULE_TESTS,
    RULES,
    alerts,
    fast_rules,
    github_anchors,
    load_rules,
    promtool,
)

RULE_TEST_FILES = sorted(RULE_TESTS.glob("*.test.yml"))
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported_series(registry: CollectorRegistry) -> set[str]:
    """Every series name a registry can export, labelled children or not."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def alert_cases() -> list[tuple[str, bool]]:
    """(alertname, fires?) for every ``alert_rule_test`` case of every unit-test file."""
    cases = []
    for path in RULE_TEST_FILES:
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in document["tests"]:
            cases += [(case["alertname"], bool(case["exp_alerts"])) for case in test["alert_rule_test"]]
    return cases


def test_alert_rules_promtool_check_rules_passes() -> None:
    result = promtool("check", "rules", "--lint-fatal", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_TEST_FILES, ids=lambda p: p.name)
def test_alert_rules_promtool_unit_tests_pass(path: Path) -> None:
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_example_scrape_config_passes_promtool_check_config() -> None:
    result = promtool("check", "config", str(EXAMPLE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    cases = set(alert_cases())
    for rule in alerts():
        assert (rule["alert"], True) in cases, f"no unit test where {rule['alert']} fires"
        assert (rule["alert"], False) in cases, f"no unit test where {rule['alert']} stays silent"


def test_alert_rules_every_runbook_anchor_exists_in_operations_md() -> None:
    anchors = github_anchors(OPERATIONS.read_text(encoding="utf-8"))
    for rule in alerts():
        document, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert document == "docs/OPERATIONS.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: docs/OPERATIONS.md has no section #{anchor}"


def test_alert_rules_every_alert_has_a_severity_and_a_summary() -> None:
    for rule in alerts():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_alert_rules_name_only_metrics_the_tiers_export() -> None:
    exported = exported_series(GatewayMetrics().registry) | exported_series(SidecarMetrics().registry)
    for rule in alerts():
        for name in re.findall(r"\bwx(?:gw|sc)_[a-z_]+", rule["expr"]):
            assert name in exported, f"{rule['alert']} uses {name}, which neither tier exports"


def test_alert_rules_fast_copy_changes_only_the_for_durations() -> None:
    shipped, fast = alerts(), alerts(fast_rules(load_rules()))
    assert [r["expr"] for r in fast] == [r["expr"] for r in shipped]
    assert {r["for"] for r in fast} == {"1s"}
