"""Callback XML in and out: hostile-input-safe parsing and the one function that writes XML.

The callback body is parsed before anything authenticates it (plaintext mode is never
authenticated at all), and this machine's expat (2.5.0) predates the billion-laughs hardening of
2.6.0. So markup declarations are refused by a scan of the raw text *before* expat sees a byte:
no DOCTYPE means no entity can be declared, and no entity can be expanded. Handlers that refuse
a DOCTYPE or an entity declaration stay on the parser as a second line.

Parsing drives expat (pyexpat) directly and builds the fields in one pass, in its callbacks: a
callback body is parsed twice per safe-mode request (envelope, then message), and a generic
XML-to-dict library followed by a normalising walk cost about twice as much.

Replies are built only by :func:`build_xml`, which writes every text value as CDATA and splits a
``]]>`` inside it, so no reply content can break out of its element.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from typing import Any
from xml.parsers import expat
from xml.parsers.expat import ExpatError

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
MAX_DEPTH = 8  # WeChat nests two levels at most (e.g. SendPicsInfo/PicList/item)
_DECLARATION = re.compile(r"\A<\?xml(?:\s[^<>?]*)?\?>")
_MARKUP = re.compile(r"<[!?]")
# Characters XML 1.0 cannot carry at all; a reply holding one would be unreadable for WeChat.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def parse_fields(body: bytes, *, max_bytes: int) -> Fields:
    """The ``<xml>`` root's children: text elements as strings, nested elements as objects.

    Repeated elements become a list, attributes are ignored, an empty element is ``""``. A
    text value keeps its whitespace (a user's message is data); whitespace between elements is
    dropped and other text beside elements is refused.

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
    tree = _Tree()
    # utf-8 is forced on expat, so an encoding="..." in the declaration cannot re-route the scan;
    # expat gets the bytes that were scanned (less the one BOM the decode dropped).
    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True
    parser.ordered_attributes = True  # a list is cheaper to build than a dict, and both are ignored
    parser.StartElementHandler = tree.start
    parser.EndElementHandler = tree.end
    parser.CharacterDataHandler = tree.text
    parser.StartDoctypeDeclHandler = _refuse_doctype  # second line: the scan already refused these
    parser.EntityDeclHandler = _refuse_entity
    try:
        parser.Parse(body[3:] if body.startswith(codecs.BOM_UTF8) else body, True)
    except ExpatError as exc:
        raise MalformedRequest(f"malformed XML: {exc}") from None
    return tree.fields()


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


def _refuse_doctype(*_: object) -> None:
    raise HostileXml("DOCTYPE is refused")


def _refuse_entity(*_: object) -> None:
    raise HostileXml("entity declarations are refused")


class _Tree:
    """The fields, built while expat parses: one ``[children, text]`` frame per open element.

    The handlers run once per element and text run, so they do the least work that keeps the
    rules: the root must be ``<xml>`` and nesting is bounded, both checked as each element
    opens (a deep document is refused at the first element too deep, before the rest is built).
    """

    __slots__ = ("_frames", "_root")

    def __init__(self) -> None:
        # children: None until the element's first child closes; text: all its character data.
        self._frames: list[list[Any]] = []
        self._root: Fields | str = ""

    def start(self, name: str, _attributes: list[str]) -> None:
        frames = self._frames
        if len(frames) > MAX_DEPTH:
            raise MalformedRequest(f"XML nested deeper than {MAX_DEPTH} levels")
        if not frames and name != "xml":
            raise MalformedRequest("root element must be <xml>")
        frames.append([None, ""])

    def text(self, data: str) -> None:
        self._frames[-1][1] += data

    def end(self, name: str) -> None:
        frames = self._frames
        children, text = frames.pop()
        value: Fields | str
        if children is None:
            value = text
        elif text and not text.isspace():
            raise MalformedRequest("elements mixed with text are not a WeChat message")
        else:
            value = children
        if not frames:
            self._root = value
            return
        parent = frames[-1]
        siblings = parent[0]
        if siblings is None:
            parent[0] = {name: value}
        elif name not in siblings:
            siblings[name] = value
        elif isinstance(earlier := siblings[name], list):
            earlier.append(value)
        else:
            siblings[name] = [earlier, value]

    def fields(self) -> Fields:
        root = self._root
        if isinstance(root, str):
            if root and not root.isspace():
                raise MalformedRequest("<xml> must hold elements, not text")
            return {}
        return root


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
