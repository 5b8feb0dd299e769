"""gateway.wechat.wxxml: hostile XML refused before expat expands anything; replies escaped right."""

from __future__ import annotations

import time
from xml.sax.saxutils import escape

import pytest
import xmltodict
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import BodyTooLarge, HostileXml, MalformedRequest, RequestRejected
from gateway.wechat.wxxml import build_xml, encrypted_reply_xml, parse_fields, text_reply_xml
from tests.gateway.helpers import BILLION_LAUGHS

LIMIT = 64 * 1024

def parse(text: str) -> dict[str, object]:
    return parse_fields(text.encode("utf-8"), max_bytes=LIMIT)


# --- parsing -------------------------------------------------------------------------------


def test_parse_fields_cdata_and_bare_numbers_become_strings() -> None:
    fields = parse("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1409735668</CreateTime></xml>")
    assert fields == {"ToUserName": "gh_1", "CreateTime": "1409735668"}


def test_parse_fields_nested_elements_become_objects() -> None:
    fields = parse("<xml><SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>ab</PicMd5Sum></item></PicList>"
                   "</SendPicsInfo></xml>")
    assert fields == {"SendPicsInfo": {"Count": "1", "PicList": {"item": {"PicMd5Sum": "ab"}}}}


def test_parse_fields_empty_element_is_an_empty_string() -> None:
    assert parse("<xml><EventKey></EventKey><Ticket/></xml>") == {"EventKey": "", "Ticket": ""}


def test_parse_fields_cdata_may_hold_markup_lookalikes() -> None:
    fields = parse("<xml><Content><![CDATA[<!DOCTYPE x> <?pi?> <!-- & ]]></Content></xml>")
    assert fields == {"Content": "<!DOCTYPE x> <?pi?> <!-- & "}


def test_parse_fields_predefined_entities_are_decoded() -> None:
    assert parse("<xml><Content>a &amp; b &lt;c&gt; &#20013;</Content></xml>") == {"Content": "a & b <c> 中"}


def test_parse_fields_xml_declaration_is_allowed() -> None:
    assert parse('<?xml version="1.0" encoding="utf-8"?><xml><A>1</A></xml>') == {"A": "1"}


def test_parse_fields_utf8_bom_is_allowed() -> None:
    assert parse_fields(b"\xef\xbb\xbf<xml><A>1</A></xml>", max_bytes=LIMIT) == {"A": "1"}


def test_parse_fields_text_keeps_its_whitespace_and_indentation_is_dropped() -> None:
    fields = parse("<xml>\n  <Content><![CDATA[  two spaces  ]]></Content>\n  <B>\n<C> c</C>\n</B>\n</xml>")
    assert fields == {"Content": "  two spaces  ", "B": {"C": " c"}}


def test_parse_fields_text_beside_elements_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="mixed"):
        parse("<xml>stray<A>1</A></xml>")


def test_parse_fields_attributes_are_ignored() -> None:
    assert parse('<xml><A kind="x">1</A></xml>') == {"A": "1"}


# --- hostile input -------------------------------------------------------------------------


def test_parse_fields_doctype_raises_hostile_xml() -> None:
    with pytest.raises(HostileXml, match="DOCTYPE"):
        parse('<!DOCTYPE xml [<!ENTITY x "y">]><xml><A>&x;</A></xml>')


def test_parse_fields_billion_laughs_refused_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(HostileXml):
        parse(BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.1


def test_parse_fields_external_entity_raises_hostile_xml() -> None:
    with pytest.raises(HostileXml):
        parse('<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><A>&xxe;</A></xml>')


def test_parse_fields_lowercase_doctype_is_refused_too() -> None:
    with pytest.raises(HostileXml):
        parse("<!doctype xml><xml/>")


def test_parse_fields_processing_instruction_raises_hostile_xml() -> None:
    with pytest.raises(HostileXml, match="processing"):
        parse('<xml><?xml-stylesheet href="x"?><A>1</A></xml>')


def test_parse_fields_second_declaration_is_refused() -> None:
    with pytest.raises(HostileXml):
        parse('<?xml version="1.0"?><?xml version="1.0"?><xml/>')


def test_parse_fields_comment_raises_hostile_xml() -> None:
    with pytest.raises(HostileXml, match="comment"):
        parse("<xml><!-- hi --><A>1</A></xml>")


def test_parse_fields_markup_after_a_cdata_section_is_still_seen() -> None:
    with pytest.raises(HostileXml):
        parse('<xml><A><![CDATA[ok]]></A><!ENTITY x "y"></xml>')


def test_parse_fields_undeclared_entity_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="malformed XML"):
        parse("<xml><A>&lol;</A></xml>")


def test_parse_fields_declared_encoding_cannot_reroute_the_scan() -> None:
    # A UTF-16 document would hide "<!" from a byte scan; bodies must be UTF-8.
    body = '<?xml version="1.0" encoding="utf-16"?><xml><A>1</A></xml>'.encode("utf-16")
    with pytest.raises(MalformedRequest, match="UTF-8"):
        parse_fields(body, max_bytes=LIMIT)


# --- size and shape ------------------------------------------------------------------------


def test_parse_fields_over_limit_raises_body_too_large() -> None:
    with pytest.raises(BodyTooLarge):
        parse_fields(b"<xml><A>" + b"x" * 2000 + b"</A></xml>", max_bytes=1024)


def test_parse_fields_at_limit_is_accepted() -> None:
    body = b"<xml><A>" + b"x" * (1024 - 18) + b"</A></xml>"
    assert len(body) == 1024
    assert parse_fields(body, max_bytes=1024)["A"] == "x" * (1024 - 18)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<xml><A>1</A>", "malformed XML"),
        ("", "malformed XML"),
        ("not xml at all", "malformed XML"),
        ("<root><A>1</A></root>", "root element must be <xml>"),
        ("<xml>just text</xml>", "not text"),
        ("<xml><A><![CDATA[never closed</A></xml>", "CDATA"),
    ],
)
def test_parse_fields_malformed_raises_malformed_with_reason(body: str, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        parse(body)


def test_parse_fields_invalid_utf8_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="UTF-8"):
        parse_fields(b"<xml><A>\xff\xfe</A></xml>", max_bytes=LIMIT)


def test_parse_fields_deep_nesting_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="nested"):
        parse("<xml>" + "<a>" * 50 + "x" + "</a>" * 50 + "</xml>")


def test_parse_fields_eight_levels_pass_and_nine_are_refused() -> None:
    expected: object = "x"
    for _ in range(8):
        expected = {"a": expected}
    assert parse("<xml>" + "<a>" * 8 + "x" + "</a>" * 8 + "</xml>") == expected
    with pytest.raises(MalformedRequest, match="nested deeper than 8"):
        parse("<xml>" + "<a>" * 9 + "x" + "</a>" * 9 + "</xml>")


def test_parse_fields_deep_nesting_is_refused_before_the_rest_is_read() -> None:
    # Never closed: refused for its depth at the ninth level, not parsed to the end first.
    with pytest.raises(MalformedRequest, match="nested"):
        parse("<xml>" + "<a>" * 5000)


def test_parse_fields_repeated_elements_become_a_list_in_order() -> None:
    fields = parse("<xml><PicList><item><M>a</M></item><item><M>b</M></item><item/></PicList><N>1</N></xml>")
    assert fields == {"PicList": {"item": [{"M": "a"}, {"M": "b"}, ""]}, "N": "1"}


def test_parse_fields_text_beside_nested_elements_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="mixed"):
        parse("<xml><B><C>1</C>stray</B></xml>")


def test_parse_fields_whitespace_around_the_root_is_allowed() -> None:
    assert parse("\n <xml><A>1</A></xml>\n\t ") == {"A": "1"}


def test_parse_fields_whitespace_only_root_is_empty() -> None:
    assert parse("<xml>\n  </xml>") == {}


def test_parse_fields_wrong_root_raises_malformed_even_when_empty() -> None:
    with pytest.raises(MalformedRequest, match="root element must be <xml>"):
        parse("<message/>")


# --- building ------------------------------------------------------------------------------


def test_build_xml_splits_cdata_terminator_so_content_round_trips() -> None:
    content = "a]]>b<![CDATA[c]]>]]>"
    xml = build_xml({"Content": content})
    assert xmltodict.parse(xml)["xml"]["Content"] == content


def test_build_xml_integers_are_bare() -> None:
    assert build_xml({"CreateTime": 1700000000}) == "<xml><CreateTime>1700000000</CreateTime></xml>"


def test_build_xml_characters_xml_cannot_hold_are_replaced() -> None:
    xml = build_xml({"Content": "bell\x07nul\x00"})
    assert xmltodict.parse(xml)["xml"]["Content"] == "bell\ufffdnul\ufffd"


def test_build_xml_output_parses_back_through_the_hostile_safe_parser() -> None:
    xml = build_xml({"Content": "<!DOCTYPE x> ]]> <?pi?>", "N": 3})
    assert parse(xml) == {"Content": "<!DOCTYPE x> ]]> <?pi?>", "N": "3"}


def test_text_reply_xml_swaps_sender_and_receiver() -> None:
    message = {"ToUserName": "gh_app", "FromUserName": "o_user", "MsgType": "text"}
    reply = parse(text_reply_xml(message, "hi", 1700000001))
    assert reply == {
        "ToUserName": "o_user",
        "FromUserName": "gh_app",
        "CreateTime": "1700000001",
        "MsgType": "text",
        "Content": "hi",
    }


def test_encrypted_reply_xml_has_the_four_fields_in_order() -> None:
    xml = encrypted_reply_xml("ENC==", "abc123", 1700000001, "42")
    assert xml == (
        "<xml><Encrypt><![CDATA[ENC==]]></Encrypt><MsgSignature><![CDATA[abc123]]></MsgSignature>"
        "<TimeStamp>1700000001</TimeStamp><Nonce><![CDATA[42]]></Nonce></xml>"
    )


# --- properties ----------------------------------------------------------------------------

XML_TEXT = st.text(
    # XML 1.0 characters; "\r" is left out because every XML parser normalises line ends.
    alphabet=st.characters(min_codepoint=0x20, blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff")
    | st.sampled_from("\t\n"),
    max_size=200,
)


@given(content=XML_TEXT)
def test_build_xml_any_text_round_trips_through_parse_fields(content: str) -> None:
    assert parse(build_xml({"Content": content}))["Content"] == content


NAMES = st.sampled_from(["A", "B", "item", "Content"])
LEAF = XML_TEXT.map(lambda text: ("leaf", text))


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Documents of WeChat's shape and then some: repeats, empties, attributes, CDATA, indentation."""
    tree = draw(st.recursive(LEAF, lambda kids: st.lists(st.tuples(NAMES, kids), max_size=4), max_leaves=12))
    return "<xml>" + _render(draw, tree, 1) + "</xml>" if isinstance(tree, list) else "<xml></xml>"


def _render(draw: st.DrawFn, children: list[tuple[str, object]], depth: int) -> str:
    parts = []
    for name, node in children:
        indent = draw(st.sampled_from(["", "\n", "\n  ", " \t"]))
        attributes = draw(st.sampled_from(["", ' kind="x"']))
        if isinstance(node, tuple):
            text = node[1]
            if not text:
                body = draw(st.sampled_from([f"<{name}{attributes}/>", f"<{name}{attributes}></{name}>"]))
            elif draw(st.booleans()) and "]]>" not in text:
                body = f"<{name}{attributes}><![CDATA[{text}]]></{name}>"
            else:
                body = f"<{name}{attributes}>{escape(text)}</{name}>"
        else:
            body = f"<{name}{attributes}>{_render(draw, node, depth + 1)}</{name}>"  # type: ignore[arg-type]
        parts.append(indent + body)
    return "".join(parts) + draw(st.sampled_from(["", "\n"]))


def xmltodict_fields(text: str) -> object:
    """What parse_fields returned when it was xmltodict plus a normalising walk (the oracle)."""
    root = xmltodict.parse(text, xml_attribs=False, strip_whitespace=False)["xml"]

    def value(v: object) -> object:
        if v is None:
            return ""
        if isinstance(v, dict):
            assert not str(v.get("#text", "")).strip()
            return {k: value(c) for k, c in v.items() if k != "#text"}
        if isinstance(v, list):
            return [value(c) for c in v]
        return v

    return {} if root is None or isinstance(root, str) else value(root)


@given(document=documents())
def test_parse_fields_gives_what_xmltodict_gave(document: str) -> None:
    assert parse(document) == xmltodict_fields(document)


@given(body=st.binary(max_size=300) | st.text(alphabet="<>![]-?&;xmlDOCTYPEA/ \"'=", max_size=120).map(str.encode))
def test_parse_fields_any_input_raises_only_request_errors(body: bytes) -> None:
    try:
        parse_fields(body, max_bytes=LIMIT)
    except RequestRejected:
        pass
