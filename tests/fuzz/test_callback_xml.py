"""The callback endpoint against hostile and malformed XML, in every mode that carries it.

A plaintext body is parsed before anything authenticates it, and an encrypted payload is parsed
after a signature any WeChat account holder can produce, so both must survive anything: zero
5xx, a 4xx with one readable line, nothing spooled.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.callbacks import ENCRYPTED, PLACES, Callbacks, Place, place
from tests.fuzz.strategies import ATTACK_REASONS, ATTACKS, json_values, nested, xml_documents
from tests.fuzz.support import FUZZ, assert_refused
from tests.gateway.helpers import message_xml, text_message

places = st.sampled_from(PLACES)


@FUZZ
@given(where=places, payload=st.binary(max_size=4096))
async def test_callback_any_bytes_are_refused_and_nothing_spooled(gw: Callbacks, where: Place, payload: bytes) -> None:
    await gw.refused(*place(where, payload), 400, 413)


@FUZZ
@given(where=places, document=xml_documents())
async def test_callback_xml_like_text_never_fails_the_server(gw: Callbacks, where: Place, document: str) -> None:
    """Random near-WeChat documents: refused with a reason, or (when they form a message) spooled."""
    depth = gw.spool.stats().depth
    status, reason = await gw.post(*place(where, document.encode("utf-8")))
    if status == 200:
        assert gw.spool.stats().depth <= depth + 1
    else:
        assert_refused(status, reason, 400, 403)
        assert gw.spool.stats().depth == depth


@FUZZ
@given(
    where=places,
    attack=st.sampled_from(sorted(ATTACKS)),
    prefix=st.sampled_from(("", "\ufeff", "  \n", "<?xml version='1.0' encoding='utf-8'?>\n")),
)
async def test_callback_hostile_markup_is_refused_before_any_entity_resolves(
    gw: Callbacks, where: Place, attack: str, prefix: str
) -> None:
    reason = await gw.refused(*place(where, (prefix + ATTACKS[attack]).encode("utf-8")), 400, 413)
    assert any(word in reason for word in ATTACK_REASONS) or "limit" in reason, reason
    assert "root:" not in reason


@FUZZ
@given(where=places, depth=st.integers(9, 30_000), tag=st.sampled_from(("a", "Content", "item")))
async def test_callback_deep_nesting_is_refused(gw: Callbacks, where: Place, depth: int, tag: str) -> None:
    reason = await gw.refused(*place(where, nested(depth, tag).encode("utf-8")), 400, 413)
    assert "nested deeper" in reason or "limit" in reason, reason


@FUZZ
@given(depth=st.integers(0, 7))
async def test_callback_nesting_within_the_bound_is_accepted(gw: Callbacks, depth: int) -> None:
    """The control for the test above: WeChat's own nesting (two levels) and a little more pass."""
    fields = text_message("nested")
    body = message_xml(fields)[: -len("</xml>")] + "<Extra>" + "<a>" * depth + "x" + "</a>" * depth + "</Extra></xml>"
    await gw.accepted(*place("plain", body.encode("utf-8")))


CONTENT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/xml; charset=gbk",
    "application/xml",
    "text/plain; charset=utf-16",
    "application/octet-stream",
    "",
)


@FUZZ
@given(
    where=places,
    shape=st.sampled_from(("json", "form", "json_value", "multipart")),
    content_type=st.sampled_from(CONTENT_TYPES) | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)),
    value=json_values,
)
async def test_callback_json_and_form_bodies_are_refused_whatever_the_content_type(
    gw: Callbacks, where: Place, shape: str, content_type: str, value: object
) -> None:
    """Form/JSON confusion: a WeChat message as JSON or form data is not XML, whatever it claims."""
    fields = text_message("as json")
    if shape == "json":
        body = json.dumps(fields).encode("utf-8")
    elif shape == "form":
        body = urlencode(fields).encode("ascii")
    elif shape == "json_value":
        body = json.dumps(value).encode("utf-8")
    else:
        disposition = '--xyz\r\nContent-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
        parts = "".join(disposition.format(k, v) for k, v in fields.items())
        body = (parts + "--xyz--\r\n").encode("utf-8")
    account, query, payload = place(where, body)
    headers = {"Content-Type": content_type} if content_type else None
    await gw.refused(account, query, payload, 400, headers=headers)


@FUZZ
@given(where=st.sampled_from(ENCRYPTED), document=xml_documents())
async def test_callback_outer_envelope_of_any_shape_is_refused(gw: Callbacks, where: Place, document: str) -> None:
    """The outer XML of an encrypted callback, replaced by anything: refused before decryption."""
    account, query, _ = place(where, message_xml(text_message()).encode("utf-8"))
    depth = gw.spool.stats().depth
    status, reason = await gw.post(account, query, document.encode("utf-8"))
    assert_refused(status, reason, 400, 403)
    assert gw.spool.stats().depth == depth


async def test_callback_server_keeps_answering_after_every_attack(gw: Callbacks) -> None:
    for where in PLACES:
        for attack in ATTACKS.values():
            await gw.refused(*place(where, attack.encode("utf-8")), 400, 413)
    await gw.healthy()
    await gw.accepted(*place("plain", message_xml(text_message("still here")).encode("utf-8")))
