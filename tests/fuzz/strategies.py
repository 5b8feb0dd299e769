"""Hypothesis strategies for hostile input: odd Unicode, XML fragments, attacks, JSON shapes, headers."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# --- Unicode ------------------------------------------------------------------------------------

RTL_AND_INVISIBLE = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u200d\ufeff\u2028\u2029"
EMOJI = "😀👩\u200d👩\u200d👧🇨🇳🏳️\u200d🌈🧑🏽\u200d💻"
CJK = "绑定成功微信通知你好﹏〇"
COMBINING = "e\u0301\u0338\u20dd"
NON_CHARACTERS = "\ufdd0\U0001fffe\U0010ffff"  # legal in XML 1.0 although "not characters"
XML_ILLEGAL = "\x00\x01\x08\x0b\x0c\x0e\x1f\ufffe\uffff"  # no XML 1.0 document may hold these
SPECIAL_TEXT = RTL_AND_INVISIBLE + EMOJI + CJK + COMBINING + NON_CHARACTERS + "<>&'\"]]>"

_C0_BUT_TAB_AND_LF = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n")
_xml_char = st.characters(blacklist_categories=["Cs"], blacklist_characters=_C0_BUT_TAB_AND_LF + "\ufffe\uffff")

# Text any XML 1.0 document may carry (no \r: XML turns it into \n, which is not data loss).
xml_text = st.text(st.sampled_from(SPECIAL_TEXT) | _xml_char, max_size=200)

# Text with at least one character XML cannot carry (NUL, C0 controls, U+FFFE/U+FFFF).
xml_illegal_text = st.tuples(xml_text, st.sampled_from(XML_ILLEGAL), xml_text).map("".join)

# Byte sequences that are never valid UTF-8: stray continuation, overlong, encoded surrogate,
# out-of-range lead bytes, a truncated multibyte sequence.
INVALID_UTF8 = (b"\xff", b"\xfe", b"\x80", b"\xc0\x80", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                b"\xf8\x88\x80\x80\x80", b"\xe4\xbd")
invalid_utf8 = st.sampled_from(INVALID_UTF8)

# Lone UTF-16 surrogates: JSON may carry them as \\ud800 escapes; UTF-8 cannot carry them at all.
surrogates = st.characters(categories=["Cs"])

# --- XML ----------------------------------------------------------------------------------------

TAGS = ("xml", "ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "Encrypt", "Event",
        "a", "x:y", "item", "PicList")
FRAGMENTS = (
    "<!DOCTYPE xml>", "<!ENTITY x 'y'>", "&x;", "&amp;", "&#0;", "&#x1F600;", "&#xD800;", "<![CDATA[", "]]>",
    "<!--", "-->", "<?pi x?>", "<?xml version='1.0'?>", "<", ">", "/>", "</", "=", '"', "'", "\ufeff", "\x00",
    " xmlns='urn:x'", " a='1'", "<xi:include href='file:///etc/passwd'/>",
)


@st.composite
def xml_documents(draw: st.DrawFn) -> str:
    """Near-WeChat XML: well-formed-ish element trees with attacks, odd text and stray markup mixed in."""

    def element(depth: int) -> str:
        tag = draw(st.sampled_from(TAGS))
        if depth > 3 or draw(st.booleans()):
            inner = draw(st.one_of(xml_text, st.sampled_from(FRAGMENTS), xml_text.map(lambda t: f"<![CDATA[{t}]]>")))
        else:
            inner = "".join(element(depth + 1) for _ in range(draw(st.integers(0, 4))))
        close = draw(st.sampled_from((f"</{tag}>", f"</{tag}>", f"</{tag}>", "", "</other>")))
        return f"<{tag}>{inner}{close}"

    head = draw(st.sampled_from(("", "", "<?xml version='1.0' encoding='utf-8'?>", "\ufeff", " \n",
                                 "<?xml version='1.0' encoding='gbk'?>")))
    body = element(0)
    if draw(st.booleans()):  # splice a fragment in at a random place
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from(FRAGMENTS)) + body[at:]
    return head + body + draw(st.sampled_from(("", "", "\n", "<xml/>", "junk")))


def nested(depth: int, tag: str = "a", text: str = "x") -> str:
    """``<xml><a><a>…x…</a></a></xml>`` with ``depth`` levels under the root."""
    return "<xml>" + f"<{tag}>" * depth + text + f"</{tag}>" * depth + "</xml>"


BILLION_LAUGHS_TEMPLATE = (
    '<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    + "]><xml><ToUserName>&lol9;</ToUserName></xml>"
)
QUADRATIC_BLOWUP = '<!DOCTYPE x [<!ENTITY a "' + "A" * 20_000 + '">]><xml><Content>' + "&a;" * 2000 + "</Content></xml>"

# Each attack is a whole document; every one must be refused before any entity is resolved.
ATTACKS: dict[str, str] = {
    "billion_laughs": BILLION_LAUGHS_TEMPLATE,
    "quadratic_blowup": QUADRATIC_BLOWUP,
    "xxe_file": '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>',
    "xxe_parameter": '<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml/>',
    "external_dtd": '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><Content>x</Content></xml>',
    "public_dtd": '<!DOCTYPE xml PUBLIC "-//X//Y" "file:///etc/passwd"><xml/>',
    "lowercase_doctype": '<!doctype xml [<!entity x "y">]><xml>&x;</xml>',
    "entity_only": '<!ENTITY x SYSTEM "file:///etc/passwd"><xml/>',
    "processing_instruction": '<?xml-stylesheet href="file:///etc/passwd"?><xml><Content>x</Content></xml>',
    "pi_inside": "<xml><?php system('id'); ?><Content>x</Content></xml>",
    "comment": "<xml><!-- hidden --><Content>x</Content></xml>",
    "second_declaration": "<?xml version='1.0'?><?xml version='1.0'?><xml/>",
}

ATTACK_REASONS = ("DOCTYPE", "entit", "comment", "processing instruction", "markup declaration")

# --- JSON ---------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | xml_text
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(xml_text, children, max_size=4),
    max_leaves=12,
)


def deep_json(depth: int, opener: str = "[") -> bytes:
    """``[[[…]]]`` (or ``{"a":{"a":…}}``) ``depth`` levels deep: past Python's recursion limit."""
    if opener == "[":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"{}" + b"}" * depth


def dump_ascii(obj: Any) -> bytes:
    """JSON with every non-ASCII character escaped, so lone surrogates survive as \\udxxx."""
    return json.dumps(obj, ensure_ascii=True).encode("ascii")


# --- HTTP headers -------------------------------------------------------------------------------

# Header values aiohttp's client will send: no control characters; any other Unicode goes out as UTF-8.
_header_char = st.characters(blacklist_categories=["Cs", "Cc"])
UNICODE_DIGITS = "0123456789²³¹¼½٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹߀०१२३४५६७८९০১২৩৪৫৬৭৮৯௦൦๐໐༠၀႐០᠐０１２３４５６７８９𝟎𝟘"
header_values = st.one_of(
    st.text(_header_char, max_size=80),
    st.text(st.sampled_from(UNICODE_DIGITS), min_size=1, max_size=12),
    st.text(st.sampled_from("v1,=+/ abcdefXYZ0123456789_-"), max_size=120),
    st.integers(-(10**15), 10**15).map(str),
)
