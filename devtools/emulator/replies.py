"""Judging a callback server's answer the way WeChat does, and what the user then sees.

``success`` or an empty body: nothing is shown. Otherwise the body must be a passive reply —
plaintext XML where the mode allows it, or the encrypted envelope whose MsgSignature checks out
and whose ciphertext decrypts for this app — addressed back to the user. Anything else is a
malformed reply, which WeChat answers with 该公众号暂时无法提供服务，请稍后再试.
"""

from __future__ import annotations

from dataclasses import dataclass

from devtools.emulator import crypto
from devtools.emulator.errors import CryptoError, EmulatorError
from devtools.emulator.xmlmsg import XmlError, parse_xml

_SHOWN_AS = {"image": "[图片]", "voice": "[语音]", "video": "[视频]", "music": "[音乐]", "news": "[图文]"}


class BadReply(EmulatorError):
    """The server answered 200 with something WeChat cannot use."""


@dataclass(frozen=True)
class Expectation:
    """What a reply to one push must look like."""

    token: str
    encoding_aes_key: str
    receive_id: str
    allow_plain: bool
    allow_encrypted: bool
    to_user: str
    from_user: str


def judge(body: bytes, expect: Expectation) -> tuple[dict[str, str], str | None]:
    """The reply's fields and what the user sees (None for an acknowledgement); BadReply otherwise."""
    if body in (b"", b"success"):
        return {}, None
    try:
        outer = parse_xml(body)
    except XmlError as exc:
        raise BadReply(f"reply is neither 'success' nor a passive reply: {exc}") from None
    if "Encrypt" in outer:
        fields = _decrypt(outer, expect)
    elif expect.allow_plain:
        fields = outer
    else:
        raise BadReply("a plaintext reply where this mode requires an encrypted one")
    return fields, _shown(fields, expect)


def _decrypt(outer: dict[str, str], expect: Expectation) -> dict[str, str]:
    if not expect.allow_encrypted:
        raise BadReply("an encrypted reply in plaintext mode")
    missing = [k for k in ("MsgSignature", "TimeStamp", "Nonce") if not outer.get(k)]
    if missing:
        raise BadReply(f"encrypted reply lacks {', '.join(missing)}")
    encrypted = outer["Encrypt"]
    if not crypto.signature_matches(outer["MsgSignature"], expect.token, outer["TimeStamp"], outer["Nonce"], encrypted):
        raise BadReply("encrypted reply's MsgSignature does not match")
    try:
        inner = crypto.decrypt(expect.encoding_aes_key, expect.receive_id, encrypted)
        return parse_xml(inner)
    except (CryptoError, XmlError) as exc:
        raise BadReply(f"encrypted reply does not decrypt to a message: {exc}") from None


def _shown(fields: dict[str, str], expect: Expectation) -> str:
    if fields.get("ToUserName") != expect.to_user:
        raise BadReply(f"reply ToUserName {fields.get('ToUserName')!r} is not the user {expect.to_user!r}")
    if fields.get("FromUserName") != expect.from_user:
        raise BadReply(f"reply FromUserName {fields.get('FromUserName')!r} is not {expect.from_user!r}")
    if not fields.get("CreateTime", "").isdigit():
        raise BadReply("reply CreateTime is missing or not a number")
    msg_type = fields.get("MsgType", "")
    if msg_type == "text":
        return fields.get("Content", "")
    if msg_type in _SHOWN_AS:
        return _SHOWN_AS[msg_type]
    raise BadReply(f"reply MsgType {msg_type!r} is not one WeChat can show")
