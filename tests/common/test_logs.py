"""common.logs.JsonFormatter: one JSON object a line, whatever the values hold."""

from __future__ import annotations

import json
import logging

import pytest

from common.logs import JsonFormatter

LINE_BREAKERS = [chr(c) for c in range(0x80, 0xA0)] + ["\u2028", "\u2029"]


def record(msg: str, **extra: str) -> logging.LogRecord:
    entry = logging.LogRecord("test", logging.INFO, __file__, 1, msg, None, None)
    entry.__dict__.update(extra)
    return entry


@pytest.mark.parametrize("char", LINE_BREAKERS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKERS])
def test_json_formatter_c1_control_or_unicode_separator_is_escaped_and_round_trips(char: str) -> None:
    line = JsonFormatter().format(record(f"a{char}b", origin=f"http://x/{char}"))
    assert char not in line and line.splitlines() == [line]
    assert (json.loads(line)["msg"], json.loads(line)["origin"]) == (f"a{char}b", f"http://x/{char}")


def test_json_formatter_other_non_ascii_text_stays_readable() -> None:
    line = JsonFormatter().format(record("绑定成功 é ÿ"))
    assert "绑定成功 é ÿ" in line
