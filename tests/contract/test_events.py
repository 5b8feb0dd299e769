import hashlib
from datetime import UTC, datetime

import pytest

from contract import ContractError, event_id, make_envelope, parse_envelope


def test_event_id_uses_msgid_when_present():
    message = {"MsgId": "6054768590064713728", "FromUserName": "o1", "CreateTime": "1"}
    expected = "evt_" + hashlib.sha256(b"main\nmsg:6054768590064713728").hexdigest()[:32]
    assert event_id("main", message) == expected


def test_event_id_uses_event_tuple_without_msgid():
    message = {"FromUserName": "o1", "CreateTime": "1409735668", "Event": "SCAN", "EventKey": "k"}
    expected = "evt_" + hashlib.sha256(b"main\nevt:o1|1409735668|SCAN|k").hexdigest()[:32]
    assert event_id("main", message) == expected


def test_event_id_treats_missing_fields_as_empty():
    expected = "evt_" + hashlib.sha256(b"a\nevt:o1|5||").hexdigest()[:32]
    assert event_id("a", {"FromUserName": "o1", "CreateTime": "5"}) == expected


def test_event_id_differs_per_account():
    message = {"MsgId": "1"}
    assert event_id("a", message) != event_id("b", message)


def test_make_envelope_formats_received_at_with_milliseconds():
    moment = datetime(2026, 11, 28, 23, 59, 59, 123456, tzinfo=UTC)
    env = make_envelope("main", "mp", "safe", {"MsgId": "1"}, moment)
    assert env["received_at"] == "2026-11-28T23:59:59.123Z"
    assert env["id"] == event_id("main", {"MsgId": "1"})


def test_parse_envelope_accepts_what_make_envelope_builds():
    env = make_envelope("main", "wecom", "safe", {"MsgId": "9"}, datetime.now(UTC))
    assert parse_envelope(dict(env)) == env


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("kind", "sms", "kind"),
        ("mode", "aes", "mode"),
        ("id", "evt_123", "32 hex"),
        ("message", "x", "message"),
        ("account", 5, "account"),
    ],
)
def test_parse_envelope_rejects_bad_field(field, value, reason):
    env = dict(make_envelope("main", "mp", "plain", {"MsgId": "1"}, datetime.now(UTC)))
    env[field] = value
    with pytest.raises(ContractError, match=reason):
        parse_envelope(env)


def test_parse_envelope_rejects_id_not_derived_from_message():
    env = dict(make_envelope("main", "mp", "plain", {"MsgId": "1"}, datetime.now(UTC)))
    env["message"] = {"MsgId": "2"}
    with pytest.raises(ContractError, match="does not match"):
        parse_envelope(env)
