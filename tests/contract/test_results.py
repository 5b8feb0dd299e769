import json
from datetime import UTC, datetime

import pytest

from contract import (
    Envelope,
    MalformedPayload,
    Result,
    dump_json,
    event_id,
    events_body,
    load_json,
    make_envelope,
    parse_events,
    parse_results,
    results_body,
)

EVT = event_id("main", {"MsgId": "1"})


def test_parse_results_reads_reply():
    entry = {"id": EVT, "status": "accepted", "reply": {"type": "text", "content": "hi"}}
    assert parse_results({"results": [entry]}) == [entry]


def test_parse_results_missing_reply_is_none():
    assert parse_results({"results": [{"id": EVT, "status": "duplicate"}]})[0]["reply"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"results": "x"},
        {"results": [{"id": "nope", "status": "accepted"}]},
        {"results": [{"id": EVT, "status": "ok"}]},
    ],
)
def test_parse_results_rejects_bad_shapes(body):
    with pytest.raises(MalformedPayload):
        parse_results(body)


def test_load_json_rejects_bad_utf8():
    with pytest.raises(MalformedPayload):
        load_json(b"\xff{")


def _envelopes() -> list[Envelope]:
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    return [
        make_envelope("main", "mp", "safe", {"MsgId": "1", "Content": '你好 "q" \\ \u2028 😀'}, moment),
        make_envelope("main", "mp", "safe", {"MsgId": "2"}, moment),
    ]


def test_events_body_of_serialised_envelopes_equals_dump_json_of_the_objects():
    envelopes = _envelopes()
    spliced = events_body(dump_json(e).decode("utf-8") for e in envelopes)
    assert spliced == dump_json({"events": envelopes})


def test_events_body_with_fields_appends_them_after_the_events():
    envelopes = _envelopes()
    spliced = events_body((dump_json(e).decode("utf-8") for e in envelopes), lease_seconds=30)
    assert spliced == dump_json({"events": envelopes, "lease_seconds": 30})


def test_events_body_of_no_envelopes_is_an_empty_list():
    assert json.loads(events_body([])) == {"events": []}


def test_events_body_round_trips_through_parse_events():
    envelopes = _envelopes()
    assert parse_events(load_json(events_body(dump_json(e).decode() for e in envelopes))) == envelopes


def test_results_body_round_trips_through_parse_results():
    result = Result(id=EVT, status="accepted", reply=None)
    assert parse_results(load_json(results_body([result]))) == [result]
