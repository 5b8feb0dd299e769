"""Section, the strict TOML reader: typed values, one problem line per bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.config import Secret, Section


def section(data: dict[str, Any], tmp_path: Path) -> Section:
    return Section(data, "relay", tmp_path, [])


def _short(value: str) -> str | None:
    return "too long" if len(value) > 3 else None


def test_section_number_out_of_bounds_returns_the_default_and_records_why(tmp_path: Path) -> None:
    s = section({"timeout_s": 900}, tmp_path)
    assert s.number("timeout_s", 10.0, max=300) == 10.0
    assert s.problems == ["relay.timeout_s: must be at most 300"]


def test_section_integer_given_as_integer_keeps_its_value(tmp_path: Path) -> None:
    s = section({"lease_s": 45}, tmp_path)
    assert (s.integer("lease_s", 30, min=1), s.problems) == (45, [])


def test_section_required_text_missing_gives_a_placeholder_and_one_problem(tmp_path: Path) -> None:
    s = section({}, tmp_path)
    assert s.text("name", check=_short) == ""
    assert s.problems == ["relay.name: is required"]


def test_section_text_of_wrong_type_is_not_judged_by_its_check(tmp_path: Path) -> None:
    s = section({"name": 12345}, tmp_path)
    assert s.text("name", "main", check=_short) == "main"
    assert s.problems == ["relay.name: must be a string"]


def test_section_text_failing_its_check_returns_the_default(tmp_path: Path) -> None:
    s = section({"name": "toolong"}, tmp_path)
    assert s.text("name", "ok", check=_short) == "ok"
    assert s.problems == ["relay.name: too long"]


def test_section_choice_outside_the_choices_is_none_when_required(tmp_path: Path) -> None:
    s = section({"kind": "fax"}, tmp_path)
    assert s.choice("kind", ("mp", "wecom")) is None
    assert s.problems == ["relay.kind: must be one of mp, wecom (got 'fax')"]


def test_section_secret_list_drops_and_reports_each_failing_secret(tmp_path: Path) -> None:
    s = section({"secrets": ["abc", "abcdef"]}, tmp_path)
    assert s.secret_list("secrets", check=_short) == [Secret("abc")]
    assert s.problems == ["relay.secrets[1]: too long"]


def test_section_waive_unknown_keys_reports_no_leftover_key(tmp_path: Path) -> None:
    s = section({"kind": "fax", "corp_id": "x"}, tmp_path)
    s.choice("kind", ("mp", "wecom"))
    s.waive_unknown_keys()
    s.check_known()
    assert s.problems == ["relay.kind: must be one of mp, wecom (got 'fax')"]


def test_section_unread_key_is_reported_unknown(tmp_path: Path) -> None:
    s = section({"kind": "mp", "typo": 1}, tmp_path)
    s.choice("kind", ("mp", "wecom"))
    s.check_known()
    assert s.problems == ["relay.typo: unknown key"]
