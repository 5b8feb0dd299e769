"""Caller authentication on the send components: app code + secret, bk_signature, and each failure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.bk.callers import signature
from tests.sidecar.esb.conftest import T0, Rig
from tests.sidecar.helpers import CLIENT_SECRET

PATH = "/api/c/compapi/cmsi/send_weixin/"
DATA = {"heading": "h", "message": "m"}


async def envelope_of(rig: Rig, method: str, path: str = PATH, **kwargs: Any) -> dict[str, Any]:
    response = await rig.client.request(method, path, **kwargs)
    assert response.status == 200
    result: dict[str, Any] = await response.json()
    return result


def signed_query(
    method: str, query: dict[str, str], body: bytes = b"", *, secret: str = CLIENT_SECRET
) -> dict[str, str]:
    query = {"bk_app_code": "bk_paas", "bk_timestamp": str(int(T0)), "bk_nonce": "n-1", **query}
    return {**query, "bk_signature": signature(secret, method, PATH, query, body)}


async def test_legacy_app_code_and_app_secret_are_accepted(rig: Rig) -> None:
    body = {"app_code": "bk_paas", "app_secret": CLIENT_SECRET, "receiver": "o1", "data": DATA}
    envelope = await envelope_of(rig, "POST", json=body)
    assert envelope["result"] is True


async def test_authorization_header_is_accepted(rig: Rig) -> None:
    header = json.dumps({"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET})
    envelope = await envelope_of(
        rig, "POST", json={"receiver": "o1", "data": DATA}, headers={"X-Bkapi-Authorization": header}
    )
    assert envelope["result"] is True


async def test_signed_get_is_accepted(rig: Rig) -> None:
    query = signed_query("GET", {"receiver": "o1", "data": json.dumps(DATA)})
    envelope = await envelope_of(rig, "GET", params=query)
    assert envelope["result"] is True
    assert rig.wechat.count("template_send") == 1


async def test_signed_post_covers_the_body(rig: Rig) -> None:
    body = json.dumps({"receiver": "o1", "data": DATA}).encode()
    envelope = await envelope_of(rig, "POST", params=signed_query("POST", {}, body), data=body)
    assert envelope["result"] is True


async def test_signed_post_with_altered_body_is_refused(rig: Rig) -> None:
    body = json.dumps({"receiver": "o1", "data": DATA}).encode()
    altered = body.replace(b"o1", b"o2")
    envelope = await envelope_of(rig, "POST", params=signed_query("POST", {}, body), data=altered)
    assert (envelope["result"], envelope["code"]) == (False, 1306404)
    assert rig.wechat.calls == []


@pytest.mark.parametrize(
    ("creds", "code"),
    [
        ({}, 1306401),
        ({"bk_app_code": "bk_paas"}, 1306401),
        ({"bk_app_code": "stranger", "bk_app_secret": "x"}, 1306402),
        ({"bk_app_code": "bk_paas", "bk_app_secret": "wrong"}, 1306403),
    ],
)
async def test_secret_auth_failures_have_bluekings_codes(rig: Rig, creds: dict[str, str], code: int) -> None:
    envelope = await envelope_of(rig, "POST", json={**creds, "receiver": "o1", "data": DATA})
    assert envelope["result"] is False
    assert envelope["code"] == code
    assert envelope["message"]
    assert envelope["data"] is None
    assert rig.wechat.calls == []


async def test_wrong_secret_is_not_echoed(rig: Rig) -> None:
    envelope = await envelope_of(
        rig, "POST", json={"bk_app_code": "bk_paas", "bk_app_secret": "guess-123", "receiver": "o1", "data": DATA}
    )
    assert "guess-123" not in json.dumps(envelope)


async def test_signature_with_wrong_secret_is_refused(rig: Rig) -> None:
    query = signed_query("GET", {"receiver": "o1", "data": json.dumps(DATA)}, secret="not-the-secret")
    envelope = await envelope_of(rig, "GET", params=query)
    assert envelope["code"] == 1306404


async def test_signature_outside_the_window_is_refused(rig: Rig) -> None:
    rig.clock.now = T0 + 301
    envelope = await envelope_of(rig, "GET", params=signed_query("GET", {"receiver": "o1", "data": json.dumps(DATA)}))
    assert envelope["code"] == 1306405
    assert rig.wechat.calls == []


async def test_replayed_signature_nonce_is_refused(rig: Rig) -> None:
    query = signed_query("GET", {"receiver": "o1", "data": json.dumps(DATA)})
    first = await envelope_of(rig, "GET", params=query)
    second = await envelope_of(rig, "GET", params=query)
    assert first["result"] is True
    assert second["code"] == 1306405
    assert rig.wechat.count("template_send") == 1


async def test_auth_failure_writes_no_audit_record(rig: Rig) -> None:
    await envelope_of(
        rig, "POST", json={"bk_app_code": "bk_paas", "bk_app_secret": "no", "receiver": "o1", "data": DATA}
    )
    assert await rig.audit() == []


async def test_auth_is_checked_before_parameters(rig: Rig) -> None:
    envelope = await envelope_of(rig, "POST", json={"bk_app_code": "stranger", "bk_app_secret": "x"})
    assert envelope["code"] == 1306402
