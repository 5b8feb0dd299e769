"""The callback endpoint against odd Unicode: what XML can carry arrives intact, the rest is refused.

Emoji, RTL and invisible marks, combining characters, CJK, noncharacters and markup characters
in a user's message are data: they must reach the spool exactly. NUL, C0 controls and U+FFFE
cannot be carried by XML at all, and bytes that are not UTF-8 are not a message: refused (400).
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

import contract
from tests.fuzz.callbacks import PLACES, Callbacks, Place, place
from tests.fuzz.strategies import invalid_utf8, xml_illegal_text, xml_text
from tests.fuzz.support import FUZZ
from tests.gateway.helpers import message_xml, text_message

places = st.sampled_from(PLACES)


async def take_only_event(gw: Callbacks) -> contract.Envelope:
    """The one event in the spool, leased and acknowledged so the next example starts empty."""
    leased = await gw.spool.lease(10, 30)
    assert len(leased) == 1
    envelope: contract.Envelope = json.loads(leased[0].body)
    await gw.spool.ack([contract.Result(id=envelope["id"], status="accepted", reply=None)])
    return envelope


@FUZZ
@given(where=places, content=xml_text.filter(lambda t: "]]>" not in t), as_cdata=st.booleans())
async def test_callback_any_xml_legal_unicode_content_is_spooled_exactly(
    gw: Callbacks, where: Place, content: str, as_cdata: bool
) -> None:
    fields = text_message(content)
    await gw.accepted(*place(where, message_xml(fields, cdata=as_cdata).encode("utf-8")))
    envelope = await take_only_event(gw)
    assert envelope["message"]["Content"] == content
    assert envelope["message"] == fields


@FUZZ
@given(where=places, content=xml_illegal_text, as_cdata=st.booleans())
async def test_callback_content_xml_cannot_carry_is_refused_400(
    gw: Callbacks, where: Place, content: str, as_cdata: bool
) -> None:
    body = message_xml(text_message(content), cdata=as_cdata)
    await gw.refused(*place(where, body.encode("utf-8")), 400)


@FUZZ
@given(where=places, bad=invalid_utf8, at=st.integers(0, 10_000))
async def test_callback_invalid_utf8_is_refused_400(gw: Callbacks, where: Place, bad: bytes, at: int) -> None:
    body = message_xml(text_message("not utf-8 after this")).encode("utf-8")
    at = at % (len(body) + 1)
    reason = await gw.refused(*place(where, body[:at] + bad + body[at:]), 400)
    assert "UTF-8" in reason or "XML" in reason


@FUZZ
@given(where=places, encoding=st.sampled_from(("utf-16", "utf-16-le", "utf-32", "gb18030", "latin-1")))
async def test_callback_body_in_another_encoding_is_refused_or_read_as_utf8(
    gw: Callbacks, where: Place, encoding: str
) -> None:
    """A declaration cannot re-route the parser: the body is UTF-8 or it is refused."""
    content = "é ü"
    document = f'<?xml version="1.0" encoding="{encoding}"?>' + message_xml(text_message(content))
    await gw.refused(*place(where, document.encode(encoding)), 400)
