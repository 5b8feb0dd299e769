"""Batches on each relay endpoint: forged envelopes, bad results, oversized batches, bad encodings.

Validation is all-or-nothing: a batch with one bad entry is refused whole (400), so a forged
envelope cannot ride in on a good one, and a bad result cannot acknowledge its good neighbours.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import contract
from tests.fuzz.relay import UNKNOWN_ID, Target, assert_relay_refusal, relay_envelope
from tests.fuzz.strategies import json_values, xml_text
from tests.fuzz.support import FUZZ

REAL_ID = relay_envelope(0)["id"]  # the event the fixture committed to the gateway's spool
hex_ids = st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: "evt_" + h)


async def refused(target: Target, payload: Any, *allowed: int) -> str:
    before = await target.effects()
    status, text = await target.signed(payload)
    assert_relay_refusal(status, text, *allowed)
    assert await target.effects() == before, f"a refused {target.name} request had an effect"
    return text


def only(*names: str) -> pytest.MarkDecorator:
    """Run a test for some of the ``target`` fixture's endpoints (the others are another test)."""
    return pytest.mark.parametrize("target", names, indirect=True)


@st.composite
def forged_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid envelope with one thing broken: an id that does not match, a bad field, a gap."""
    envelope: dict[str, Any] = dict(relay_envelope(draw(st.integers(1, 10**6))))
    message = dict(envelope["message"])
    kind = draw(st.sampled_from(("id", "msg_id", "account", "kind", "mode", "received_at", "message", "missing",
                                 "id_format")))
    if kind == "id":
        envelope["id"] = draw(hex_ids.filter(lambda i: i != envelope["id"]))
    elif kind == "msg_id":
        message["MsgId"] = draw(xml_text.filter(lambda m: m != message["MsgId"]))
    elif kind == "account":
        envelope["account"] = draw(json_values.filter(lambda a: a != "main"))
    elif kind == "kind":
        envelope["kind"] = draw(json_values.filter(lambda k: k not in ("mp", "wecom")))
    elif kind == "mode":
        envelope["mode"] = draw(json_values.filter(lambda m: m not in ("plain", "compat", "safe")))
    elif kind == "received_at":
        envelope["received_at"] = draw(json_values.filter(lambda r: not isinstance(r, str)))
    elif kind == "message":
        message = draw(json_values.filter(lambda m: not isinstance(m, dict)))
    elif kind == "missing":
        del envelope[draw(st.sampled_from(sorted(envelope)))]
    else:
        envelope["id"] = draw(st.sampled_from(("", "evt_", "EVT_" + "a" * 32, "evt_" + "A" * 32, "evt_" + "g" * 32,
                                               envelope["id"] + "0", envelope["id"][:-1])))
    if "message" in envelope:
        envelope["message"] = message
    return envelope


@only("push")
@FUZZ
@given(forged=forged_envelopes(), good_before=st.integers(0, 3), good_after=st.integers(0, 3))
async def test_push_batch_with_a_forged_envelope_is_refused_whole(
    target: Target, forged: dict[str, Any], good_before: int, good_after: int
) -> None:
    good = [relay_envelope(10**7 + n) for n in range(good_before + good_after)]
    batch = [*good[:good_before], forged, *good[good_before:]]
    await refused(target, {"events": batch}, 400)


@only("push")
@FUZZ
@given(extra=st.integers(1, 400))
async def test_push_batch_over_100_events_is_refused_whole(target: Target, extra: int) -> None:
    batch = [relay_envelope(2 * 10**7 + n) for n in range(contract.MAX_BATCH + extra)]
    assert "at most 100" in await refused(target, {"events": batch}, 400)


@st.composite
def bad_results(draw: st.DrawFn) -> dict[str, Any]:
    result: dict[str, Any] = {"id": REAL_ID, "status": "accepted", "reply": None}
    kind = draw(st.sampled_from(("id", "status", "reply", "content", "long_content", "missing", "entry")))
    if kind == "id":
        result["id"] = draw(json_values.filter(lambda i: not (isinstance(i, str) and i.startswith("evt_"))))
    elif kind == "status":
        result["status"] = draw(json_values.filter(lambda s: s not in ("accepted", "duplicate")))
    elif kind == "reply":
        result["reply"] = draw(json_values.filter(lambda r: r is not None and not isinstance(r, dict)))
    elif kind == "content":
        result["reply"] = {"type": draw(st.sampled_from(("text", "news", "", "TEXT"))),
                           "content": draw(json_values.filter(lambda c: not isinstance(c, str)))}
    elif kind == "long_content":
        result["reply"] = {"type": "text", "content": "长" * draw(st.integers(2049, 20_000))}
    elif kind == "missing":
        del result[draw(st.sampled_from(("id", "status")))]
    else:
        return draw(json_values.filter(lambda e: not isinstance(e, dict)))
    return result


@only("ack")
@FUZZ
@given(bad=bad_results(), good_first=st.booleans())
async def test_pull_ack_with_a_bad_result_acknowledges_nothing(target: Target, bad: Any, good_first: bool) -> None:
    good = {"id": REAL_ID, "status": "accepted", "reply": None}
    results = [good, bad] if good_first else [bad, good]
    await refused(target, {"results": results}, 400)


@only("ack")
@FUZZ
@given(count=st.integers(contract.MAX_BATCH + 1, 5000), seed=st.integers(0, 2**64))
async def test_pull_ack_of_many_unknown_ids_acknowledges_nothing(target: Target, count: int, seed: int) -> None:
    """An oversized ack is not an error (acks are idempotent), but it acknowledges only what it names."""
    ids = [f"evt_{(seed + n) % 2**128:032x}" for n in range(count)]
    assume(REAL_ID not in ids)
    before = await target.effects()
    status, text = await target.signed({"results": [{"id": i, "status": "accepted", "reply": None} for i in ids]})
    assert (status, contract.load_json(text.encode())) == (200, {"acked": 0})
    assert await target.effects() == before


@only("lease")
@FUZZ
@given(limit=json_values | st.integers(), wait=json_values | st.floats() | st.integers())
async def test_pull_lease_with_a_bad_max_or_wait_leases_nothing(target: Target, limit: Any, wait: Any) -> None:
    valid_limit = isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= 100
    valid_wait = isinstance(wait, int | float) and not isinstance(wait, bool) and 0 <= wait <= 25
    assume(not (valid_limit and valid_wait))
    await refused(target, {"max": limit, "wait": wait}, 400)  # NaN and Infinity go out as JSON allows


@FUZZ
@given(encoding=st.sampled_from(("gzip", "deflate")), junk=st.binary(min_size=1, max_size=200))
async def test_relay_body_that_does_not_decode_as_its_content_encoding_is_refused(
    target: Target, encoding: str, junk: bytes
) -> None:
    before = await target.effects()
    headers = {**target.signer().headers(b"{}"), "Content-Encoding": encoding}
    status, text = await target.send(junk, headers)
    assert_relay_refusal(status, text, 400, 401)
    assert await target.effects() == before


async def test_relay_valid_request_is_answered_200(target: Target) -> None:
    """The control of the refusals above: a valid request of each kind is answered 200."""
    status, text = await target.signed(target.valid())
    assert status == 200, text
    if target.name == "ack":
        assert contract.load_json(text.encode()) == {"acked": 0}
        assert UNKNOWN_ID in str(target.valid())
