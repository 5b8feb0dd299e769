"""Callback XML in and out: hostile-input-safe parsing and the one function that writes XML.

The callback body is parsed before anything authenticates it (plaintext mode is never
authenticated at all), and this machine's expat (2.5.0) predates the billion-laughs hardening of
2.6.0. So markup declarations are refused by a scan of the raw text *before* expat sees a byte:
no DOCTYPE means no entity can be declared, and no entity can be expanded. xmltodict's own
entity guard stays on as a second line.

Replies are built only by :func:`build_xml`, which writes every text value as CDATA and splits a
``]]>`` inside it, so no reply content can break out of its element.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from gateway.errors import BodyTooLarge, HostileXml, MalformedRequest

__all__ = [
    "Fields",
    "build_xml",
    "check_markup",
    "encrypted_reply_xml",
    "parse_fields",
    "text_reply_xml",
]

Fields = dict[str, Any]

CDATA_OPEN = "<![CDATA["
CDATA_CLOSE = "]]>"
TEXT_KEY = "#text"  # where xmltodict puts text found beside child elements
MAX_DEPTH = 8  # WeChat nests two levels at most (e.g. SendPicsInfo/PicList/item)
_DECLARATION = re.compile(r"\A<\?xml(?:\s[^<>?]*)?\?>")
_MARKUP = re.compile(r"<[!?]")
# Characters XML 1.0 cannot carry at all; a reply holding one would be unreadable for WeChat.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def parse_fields(body: bytes, *, max_bytes: int) -> Fields:
    """The ``<xml>`` root's children: text elements as strings, nested elements as objects.

    Raises ``BodyTooLarge``, ``HostileXml`` (DOCTYPE, entities, comments, processing
    instructions) or ``MalformedRequest`` with the parser's reason.
    """
    if len(body) > max_bytes:
        raise BodyTooLarge(f"body of {len(body)} bytes is over the {max_bytes} byte limit")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedRequest("body is not UTF-8") from None
    check_markup(text)
    try:
        # utf-8 is forced on expat, so an encoding="..." in the declaration cannot re-route the scan.
        doc = xmltodict.parse(
            text, encoding="utf-8", xml_attribs=False, disable_entities=True, strip_whitespace=False
        )
    except ExpatError as exc:
        raise MalformedRequest(f"malformed XML: {exc}") from None
    except ValueError:
        raise HostileXml("entity declarations are refused") from None
    return _root_fields(doc)


def check_markup(text: str) -> None:
    """Refuse ``<!...>`` other than CDATA sections, and ``<?...?>`` other than a leading XML declaration.

    A linear scan that skips CDATA sections whole, so a user's message may contain ``<!`` freely.
    """
    start = 0
    declaration = _DECLARATION.match(text.lstrip())
    if declaration:
        start = len(text) - len(text.lstrip()) + declaration.end()
    while (found := _MARKUP.search(text, start)) is not None:
        at = found.start()
        if not text.startswith(CDATA_OPEN, at):
            raise HostileXml(_markup_reason(text, at))
        end = text.find(CDATA_CLOSE, at + len(CDATA_OPEN))
        if end < 0:
            raise MalformedRequest("malformed XML: unterminated CDATA section")
        start = end + len(CDATA_CLOSE)


def _markup_reason(text: str, at: int) -> str:
    head = text[at : at + 9].upper()
    if head.startswith("<!DOCTYPE"):
        return "DOCTYPE is refused"
    if head.startswith("<!ENTITY"):
        return "entity declarations are refused"
    if head.startswith("<!--"):
        return "XML comments are refused"
    if head.startswith("<?"):
        return "processing instructions are refused"
    return "markup declarations are refused"


def _root_fields(doc: Any) -> Fields:
    if not isinstance(doc, dict) or list(doc) != ["xml"]:
        raise MalformedRequest("root element must be <xml>")
    root = doc["xml"]
    if root is None or (isinstance(root, str) and not root.strip()):
        return {}
    if not isinstance(root, dict):
        raise MalformedRequest("<xml> must hold elements, not text")
    return _element(root, 1)


def _element(children: dict[str, Any], depth: int) -> Fields:
    """An element's children. Text values keep their whitespace (a user's message is data), but
    the indentation between elements is dropped; other text beside elements is refused."""
    text = children.get(TEXT_KEY)
    if isinstance(text, str) and text.strip():
        raise MalformedRequest("elements mixed with text are not a WeChat message")
    return {str(k): _value(v, depth) for k, v in children.items() if k != TEXT_KEY}


def _value(value: Any, depth: int) -> Any:
    """Normalise xmltodict's output: empty elements become "", nesting is bounded."""
    if depth > MAX_DEPTH:
        raise MalformedRequest(f"XML nested deeper than {MAX_DEPTH} levels")
    if value is None:
        return ""
    if isinstance(value, dict):
        return _element(value, depth + 1)
    if isinstance(value, list):
        return [_value(v, depth + 1) for v in value]
    return str(value)


def build_xml(fields: Mapping[str, str | int]) -> str:
    """``<xml>`` with one element per field: integers bare, text as CDATA (``]]>`` split).

    The only place XML is written, so escaping is right everywhere or wrong everywhere.
    Tag names come from our code, never from input.
    """
    parts = ["<xml>"]
    for name, value in fields.items():
        parts.append(f"<{name}>{_cdata(value) if isinstance(value, str) else int(value)}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def _cdata(value: str) -> str:
    clean = _NOT_XML.sub("\ufffd", value)
    return CDATA_OPEN + clean.replace(CDATA_CLOSE, "]]]]><![CDATA[>") + CDATA_CLOSE


def text_reply_xml(message: Mapping[str, Any], content: str, create_time: int) -> str:
    """The passive text reply to ``message``: sender and receiver swapped."""
    return build_xml(
        {
            "ToUserName": _as_text(message.get("FromUserName")),
            "FromUserName": _as_text(message.get("ToUserName")),
            "CreateTime": create_time,
            "MsgType": "text",
            "Content": content,
        }
    )


def encrypted_reply_xml(encrypt: str, msg_signature: str, timestamp: int, nonce: str) -> str:
    """The envelope around an encrypted passive reply (wechat-protocol.md §1)."""
    return build_xml({"Encrypt": encrypt, "MsgSignature": msg_signature, "TimeStamp": timestamp, "Nonce": nonce})


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else ""
