"""Every relay endpoint against correctly signed bodies of the wrong shape.

A signature proves who sent a body, not that the body is sane (a bug or a compromised peer can
sign anything), so malformed JSON, wrong shapes, deep nesting, lone surrogates, oversized bodies
and envelopes whose id does not match their message are refused with 400 (413 for size), and
validation is all-or-nothing: one bad entry and nothing in the batch takes effect.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

import contract
from tests.fuzz.relay import UNKNOWN_ID, Target, assert_relay_refusal, relay_envelope
from tests.fuzz.strategies import deep_json, dump_ascii, json_values, surrogates
from tests.fuzz.support import FUZZ

REAL_ID = relay_envelope(0)["id"]  # the event the fixture committed to the gateway's spool


async def refused(target: Target, body: bytes, *allowed: int) -> None:
    before = await target.effects()
    status, text = await target.signed(body)
    assert_relay_refusal(status, text, *allowed)
    assert await target.effects() == before, f"a refused {target.name} request had an effect"


def lease_would_wait(value: Any) -> bool:
    """Whether ``value`` is a valid lease that long-polls (the test would sit out the wait)."""
    if not isinstance(value, dict):
        return False
    limit, wait = value.get("max", 100), value.get("wait", 0)
    valid_max = isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= 100
    valid_wait = isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 25
    return valid_max and valid_wait


@FUZZ
@given(text=st.text(max_size=300))
async def test_relay_signed_body_that_is_not_json_is_refused_400(target: Target, text: str) -> None:
    try:
        json.loads(text)
    except ValueError:
        await refused(target, text.encode("utf-8"), 400)
    else:
        assume(False)


@FUZZ
@given(value=json_values | st.dictionaries(st.sampled_from(("max", "wait", "results", "events")), json_values))
async def test_relay_json_of_any_shape_never_fails_the_server(target: Target, value: Any) -> None:
    """Answered 200 (when the shape happens to be valid) or 400 with nothing done; never a 5xx."""
    assume(not (target.name == "lease" and lease_would_wait(value)))
    before = await target.effects()
    status, text = await target.signed(contract.dump_json(value))
    assert status in (200, 400), text[:300]
    if status == 400:
        assert_relay_refusal(status, text, 400)
        assert await target.effects() == before


@FUZZ
@given(depth=st.integers(5_000, 150_000), opener=st.sampled_from(("[", "{")), wrapped=st.booleans())
async def test_relay_deeply_nested_json_is_refused_400(target: Target, depth: int, opener: str, wrapped: bool) -> None:
    nested = deep_json(depth, opener)
    key = {"lease": b"max", "ack": b"results", "push": b"events"}[target.name]
    await refused(target, b'{"' + key + b'":' + nested + b"}" if wrapped else nested, 400)


def with_surrogate(target: Target, lone: str, where: int) -> Any:
    """A valid payload with a lone surrogate put into one of its strings."""
    if target.name == "lease":
        return {"max": 1, "wait": 0, lone: 1}
    if target.name == "ack":
        reply = {"type": "text", "content": "ok " + lone}
        return {"results": [{"id": UNKNOWN_ID, "status": "accepted", "reply": reply}]}
    envelope: dict[str, Any] = dict(relay_envelope(1))
    message = dict(envelope["message"])
    if where % 3 == 0:
        envelope["account"] = "main" + lone
    elif where % 3 == 1:
        message["Content"] = lone
    else:
        message["MsgId"] = "1" + lone
    envelope["message"] = message  # the id is left as it was: the surrogate must be caught before any hashing
    return {"events": [envelope]}


@FUZZ
@given(lone=surrogates, where=st.integers(0, 2))
async def test_relay_lone_surrogate_in_a_string_is_refused_400(target: Target, lone: str, where: int) -> None:
    """``"\\ud800"`` is valid JSON but no Unicode text: it cannot be stored, hashed or relayed."""
    await refused(target, dump_ascii(with_surrogate(target, lone, where)), 400)


async def test_relay_body_over_one_mib_is_refused_413(target: Target) -> None:
    await refused(target, contract.dump_json({"padding": "x" * (1024 * 1024 + 1)}), 413)
