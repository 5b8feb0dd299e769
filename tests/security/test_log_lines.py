"""Finding F7: what a request carries cannot break a log record over several lines.

The reviewer put U+2028, U+2029, U+0085 and other C1 controls in a request path and in the
``Origin`` header of the binding console's unbind; ``json.dumps(ensure_ascii=False)`` left them
raw, and a shipper that splits on Unicode line breaks cut the record in two, the second half a
line an attacker wrote. Each record is now one line by ``str.splitlines`` and still decodes to
the value as received.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.security.logcheck import rendered
from tests.sidecar.binding.conftest import CONSOLE, Rig, alice, make_rig, rig

__all__ = ["alice", "make_rig", "rig"]

BREAKERS = "\u2028\u2029\x85\x9b"  # line separator, paragraph separator, NEL, CSI


async def test_line_separators_in_request_path_and_origin_header_stay_on_one_log_line(
    alice: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = CONSOLE + f"unbind_wx_user_info/{BREAKERS}forged"
    origin = f"http://evil.example.net/{BREAKERS}forged"
    await alice.client.get(path)
    status, _ = await alice.unbind(origin=origin)
    assert status == 403
    lines = rendered(caplog.records).split("\n")
    assert all(line.splitlines() == [line] for line in lines)
    values = [value for line in lines for value in json.loads(line).values()]
    assert path in values and origin in values
