"""The flat ``<xml>`` documents WeChat exchanges with callback servers: built in one place, parsed safely.

Text goes in CDATA (with ``]]>`` split across sections), integers go bare, as WeChat sends them.
Parsing refuses DOCTYPE and entity declarations before expat sees the document: the answers come
from the server under test and must not be able to make the emulator expand entities.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from devtools.emulator.errors import EmulatorError


class XmlError(EmulatorError):
    """A reply that is not a flat WeChat XML document."""


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: Mapping[str, str | int]) -> str:
    """``<xml>`` with one child per field, in the order given."""
    parts = ["<xml>"]
    for name, value in fields.items():
        inner = str(value) if isinstance(value, int) else _cdata(value)
        parts.append(f"<{name}>{inner}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def parse_xml(data: bytes | str) -> dict[str, str]:
    """The children of the root ``<xml>`` as a name → text mapping (nested elements flattened to text)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    upper = raw.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise XmlError("XML with DOCTYPE or entity declarations")
    try:
        root = ET.fromstring(raw)  # DOCTYPE/ENTITY refused above
    except ET.ParseError as exc:
        raise XmlError(f"not well-formed XML: {exc}") from None
    if root.tag != "xml":
        raise XmlError(f"root element is <{root.tag}>, not <xml>")
    return {child.tag: "".join(child.itertext()) for child in root}

