"""Every relay endpoint (pull lease, pull ack, push) against requests that are not authentic.

Unsigned, malformed-header, tampered, wrongly keyed, stale, future and replayed requests are all
refused with 401 and a one-line JSON reason, and change nothing: no lease handed out, no event
acknowledged, no inbox row.
"""

from __future__ import annotations

import base64
import binascii

from hypothesis import assume, given
from hypothesis import strategies as st

import contract
from tests.fuzz.relay import Target, assert_relay_refusal
from tests.fuzz.strategies import header_values
from tests.fuzz.support import FUZZ

HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


async def refused_401(target: Target, body: bytes, headers: dict[str, str]) -> str:
    before = await target.effects()
    status, text = await target.send(body, headers)
    assert_relay_refusal(status, text, 401)
    assert await target.effects() == before, f"a refused {target.name} request had an effect"
    return text


@FUZZ
@given(dropped=st.lists(st.sampled_from(HEADERS), min_size=1, unique=True), blank=st.booleans())
async def test_relay_request_without_its_signature_headers_is_refused_401(
    target: Target, dropped: list[str], blank: bool
) -> None:
    body = contract.dump_json(target.valid())
    headers = target.signer().headers(body)
    for name in dropped:
        if blank:
            headers[name] = ""
        else:
            del headers[name]
    assert "missing" in await refused_401(target, body, headers)


@FUZZ
@given(replaced=st.dictionaries(st.sampled_from(HEADERS), header_values, min_size=1))
async def test_relay_malformed_signature_headers_are_refused_401(target: Target, replaced: dict[str, str]) -> None:
    body = contract.dump_json(target.valid())
    headers = target.signer().headers(body)
    assume(all(headers[name] not in value for name, value in replaced.items()))
    headers.update(replaced)
    await refused_401(target, body, headers)


@st.composite
def tampered(draw: st.DrawFn, body: bytes) -> bytes:
    kind = draw(st.sampled_from(("flip", "insert", "delete", "append", "whitespace", "replace")))
    at = draw(st.integers(0, len(body) - 1))
    if kind == "flip":
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    if kind == "insert":
        return body[:at] + draw(st.binary(min_size=1, max_size=8)) + body[at:]
    if kind == "delete":
        return body[:at] + body[at + 1 :]
    if kind == "append":
        return body + draw(st.binary(min_size=1, max_size=8))
    if kind == "whitespace":  # the same JSON, other bytes: still not what was signed
        return body[:1] + b" " + body[1:]
    return draw(st.binary(max_size=200))


@FUZZ
@given(data=st.data())
async def test_relay_tampered_body_is_refused_401(target: Target, data: st.DataObject) -> None:
    signed = contract.dump_json(target.valid())
    body = data.draw(tampered(signed))
    assume(body != signed)
    await refused_401(target, body, target.signer().headers(signed))


def signature_bytes(header: str) -> bytes | None:
    try:
        return base64.b64decode(header.partition(",")[2], validate=True)
    except (binascii.Error, ValueError):
        return None


@FUZZ
@given(data=st.data())
async def test_relay_tampered_signature_is_refused_401(target: Target, data: st.DataObject) -> None:
    body = contract.dump_json(target.valid())
    headers = target.signer().headers(body)
    original = headers["webhook-signature"]
    kind = data.draw(st.sampled_from(("char", "version", "truncate", "random", "case")))
    if kind == "char":
        at = data.draw(st.integers(3, len(original) - 1))
        forged = original[:at] + data.draw(st.sampled_from("ABCabc019+/=")) + original[at + 1 :]
    elif kind == "version":
        forged = data.draw(st.sampled_from(("v2", "v1a", "V1", "", "v0"))) + original[2:]
    elif kind == "truncate":
        forged = original[: data.draw(st.integers(0, len(original) - 1))]
    elif kind == "random":
        forged = "v1," + base64.b64encode(data.draw(st.binary(min_size=0, max_size=64))).decode()
    else:
        forged = original[:3] + original[3:].swapcase()
    same = forged.startswith("v1,") and signature_bytes(forged) == signature_bytes(original)
    assume(not same)  # non-canonical base64 of the same MAC is the same signature
    headers["webhook-signature"] = forged
    await refused_401(target, body, headers)


@FUZZ
@given(raw_key=st.binary(min_size=24, max_size=64))
async def test_relay_request_signed_with_another_secret_is_refused_401(target: Target, raw_key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(raw_key).decode("ascii")
    assume(secret != target.secret)
    body = contract.dump_json(target.valid())
    text = await refused_401(target, body, target.signer(secret).headers(body))
    assert "no matching signature" in text


@FUZZ
@given(skew=st.integers(301, 10**9), future=st.booleans())
async def test_relay_stale_or_future_timestamp_is_refused_401(target: Target, skew: int, future: bool) -> None:
    moment = target.clock() + (skew if future else -skew)
    assume(moment >= 0)
    body = contract.dump_json(target.valid())
    text = await refused_401(target, body, target.signer(clock=lambda: moment).headers(body))
    assert "window" in text


@FUZZ
@given(repeats=st.integers(1, 3))
async def test_relay_replayed_request_is_refused_401(target: Target, repeats: int) -> None:
    body = contract.dump_json(target.valid())
    headers = target.signer().headers(body)
    status, text = await target.send(body, headers)
    assert status == 200, text
    for _ in range(repeats):
        assert "replay" in await refused_401(target, body, headers)
