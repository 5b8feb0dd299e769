"""Parameters of the BlueKing send components, read the way BlueKing's forms read them.

BlueKing validates with Django forms and reports the first problem as
``<label> [<field>] <reason>`` (``notification header text [heading] This field is required.``).
The labels and reasons below are BlueKing's own, so a caller that matched on them keeps working.
Every problem is a :class:`sidecar.errors.MalformedRequest` whose detail is that one line.

Lists (``receiver``, ``receiver__username``) are BlueKing's ``ListField``: a JSON list, a string
holding a JSON list, or a string split on ``,`` ``;`` space and line breaks. Booleans are
``true/false/1/0/yes/no/on/off``. Where BlueKing silently kept undecodable base64 as text, we
refuse it: sending the encoded text to people helps nobody.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.errors import MalformedRequest
from sidecar.esb.message import Message

REQUIRED = "This field is required."
NOT_A_LIST = "Must be a list"
NOT_A_DICT = "Must be the specified parameter data type dict"
NOT_TEXT = "Must be a string"
NOT_BOOL = "Must be a boolean (true or false)"
BAD_BASE64 = "is not valid base64 of UTF-8 text"
_LIST_ITEMS = re.compile(r"[^,;\n\r ]+")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_URL = re.compile(r"^https?://[^\s/]+\S*$", re.IGNORECASE)
MAX_KEY_CHARS = 128


@dataclass(frozen=True)
class Field:
    """A parameter name and BlueKing's label for it, used in every message about it."""

    name: str
    label: str

    def error(self, reason: str) -> MalformedRequest:
        return MalformedRequest(f"{self.label} [{self.name}] {reason}")


# BlueKing's labels, per component form.
RECEIVER = Field("receiver", "wechat receiver")
RECEIVER_USERNAME = Field("receiver__username", "wechat receiver")
DATA = Field("data", "message data")
HEADING = Field("heading", "notification header text")
MESSAGE = Field("message", "notification text")
DATE = Field("date", "notification sending time")
REMARK = Field("remark", "notification tail text")
MESSAGE_BASE64 = Field("is_message_base64", "notification text is encoded by base64 or not")
MSG_TYPE = Field("msg_type", "msg type")
RECIPIENTS = Field("receiver__username", "recipients")
TITLE = Field("title", "subject")
CONTENT = Field("content", "content")
CONTENT_BASE64 = Field("is_content_base64", "content is encoded by base64 or not")
QY_CONTENT = Field("content", "message content")
AGENT_ID = Field("wx_qy_agentid", "enterprise wechat agentid")
CORP_SECRET = Field("wx_qy_corpsecret", "enterprise wechat corpsecret")
# Ours (BlueKing has no such parameters); labelled in the same style.
URL = Field("url", "click-through url")
WX_MSG_TYPE = Field("wx_msg_type", "WeChat message type")
BTNTXT = Field("btntxt", "textcard button text")
ACCOUNT = Field("account", "WeChat account")
IDEMPOTENCY_KEY = Field("idempotency_key", "idempotency key")


def text(params: Mapping[str, Any], field: Field, *, required: bool = False) -> str:
    """A text parameter, stripped like Django's CharField; numbers become their text."""
    value = params.get(field.name)
    if value is None:
        result = ""
    elif isinstance(value, str):
        result = value.strip()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = str(value)
    else:
        raise field.error(NOT_TEXT)
    if required and not result:
        raise field.error(REQUIRED)
    return result


def text_list(params: Mapping[str, Any], field: Field, *, required: bool = False) -> list[str]:
    """BlueKing's ListField, without blanks and repeats (order kept)."""
    value = params.get(field.name)
    items: list[Any]
    if value is None:
        items = []
    elif isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, str):
        items = _split(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        raise field.error(NOT_A_LIST)
    result: dict[str, None] = {}  # a dict dedupes in O(1) and keeps the order
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise field.error(NOT_A_LIST)
        entry = str(item).strip()
        if entry:
            result.setdefault(entry)
    if required and not result:
        raise field.error(REQUIRED)
    return list(result)


def _split(value: str) -> list[Any]:
    try:
        loaded = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
        loaded = None
    if isinstance(loaded, list):
        return loaded
    return _LIST_ITEMS.findall(value.strip())


def boolean(params: Mapping[str, Any], field: Field) -> bool:
    value = params.get(field.name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise field.error(NOT_BOOL)


def data_object(params: Mapping[str, Any]) -> dict[str, Any]:
    """``data``: an object, or (GET and form requests can only carry text) a JSON object string."""
    value = params.get(DATA.name)
    if value is None or value == "" or value == {}:
        raise DATA.error(REQUIRED)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
            raise DATA.error(NOT_A_DICT) from None
    if not isinstance(value, dict):
        raise DATA.error(NOT_A_DICT)
    if not value:
        raise DATA.error(REQUIRED)
    return value


def message_from_data(data: Mapping[str, Any]) -> Message:
    """BlueKing's DataForm: heading and message required, message optionally base64."""
    heading = text(data, HEADING, required=True)
    body = text(data, MESSAGE, required=True)
    date = text(data, DATE)
    remark = text(data, REMARK)
    if boolean(data, MESSAGE_BASE64):
        body = decode_base64(body, MESSAGE)
    return Message(heading, body, date, remark)


def decode_base64(value: str, field: Field) -> str:
    """Standard or URL-safe base64 (padding optional) of UTF-8 text; anything else is refused."""
    compact = "".join(value.split()).replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        decoded = base64.b64decode(compact, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise field.error(BAD_BASE64) from None
    if not decoded.strip():
        raise field.error(REQUIRED)
    return decoded


def url(params: Mapping[str, Any]) -> str:
    """The optional click-through URL; only http(s), so no ``javascript:`` link reaches a phone."""
    value = text(params, URL)
    if value and not _URL.match(value):
        raise URL.error("Enter a valid URL (http:// or https://).")
    return value


def choice(params: Mapping[str, Any], field: Field, choices: tuple[str, ...], default: str) -> str:
    value = text(params, field) or default
    if value not in choices:
        raise field.error(f"Select a valid choice. {value[:64]} is not one of the available choices.")
    return value


def idempotency_key(params: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """The caller's key for "this is the same send": the parameter, else the Idempotency-Key header."""
    value = text(params, IDEMPOTENCY_KEY) or headers.get("Idempotency-Key", "").strip()
    if len(value) > MAX_KEY_CHARS:
        raise IDEMPOTENCY_KEY.error(f"Ensure this value has at most {MAX_KEY_CHARS} characters.")
    return value


__all__ = [
    "Field",
    "boolean",
    "choice",
    "data_object",
    "decode_base64",
    "idempotency_key",
    "message_from_data",
    "text",
    "text_list",
    "url",
]
