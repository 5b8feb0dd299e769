import pytest

from contract import MalformedPayload, event_id, load_json, parse_results

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
