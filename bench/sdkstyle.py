"""Baseline (b): callback handling the way popular WeChat SDK examples do it.

Written for the benchmark after the flow of wechatpy's ``WeChatCrypto`` and its Flask example,
which is what most hand-rolled WeChat endpoints copy:

1. ``check_signature(token, signature, timestamp, nonce)``: sha1 of the sorted parts, compared
   with ``!=`` (not constant time);
2. ``decrypt_message(body, msg_signature, timestamp, nonce)``: ``xmltodict.parse`` the body,
   sha1-check ``msg_signature`` with ``!=``, base64-decode, AES-256-CBC decrypt with a fresh
   decryptor, strip the padding by trusting the last byte, read the 4-byte network-order length
   with ``struct``/``socket.ntohl``, compare the app id;
3. ``parse_message(xml)``: ``xmltodict.parse`` again and build a message object whose fields are
   converted (ints, a datetime).

No durability: the message is handled in memory and "success" is answered. The gaps against
the gateway are on purpose the SDKs' (no freshness check, no XML hardening, non-constant-time
comparisons); they make this baseline *cheaper*, never dearer.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from datetime import datetime
from typing import Any

import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class InvalidSignatureError(Exception):
    pass


class InvalidAppIdError(Exception):
    pass


def check_signature(token: str, signature: str, timestamp: str, nonce: str) -> None:
    """The SDKs' ``check_signature``: sorted, joined, sha1, compared with ``!=``."""
    data = sorted([token, timestamp, nonce])
    if hashlib.sha1("".join(data).encode("utf-8")).hexdigest() != signature:
        raise InvalidSignatureError()


class PrpCrypt:
    """AES-256-CBC with IV = key[:16], as the SDKs' ``PrpCrypt``/``WeChatCipher`` pair."""

    def __init__(self, key: bytes) -> None:
        self.cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def decrypt(self, text: str, app_id: str) -> str:
        raw = base64.b64decode(text)
        decryptor = self.cipher.decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        padding = plain[-1]
        content = plain[16:-padding]
        xml_length = socket.ntohl(struct.unpack(b"I", content[:4])[0])
        xml_content = content[4 : xml_length + 4].decode("utf-8")
        from_id = content[xml_length + 4 :].decode("utf-8")
        if from_id != app_id:
            raise InvalidAppIdError()
        return xml_content


class WeChatCrypto:
    """The SDKs' message crypto object: token, key and app id, one per account."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.token = token
        self.app_id = app_id

    def decrypt_message(self, msg: bytes | str, signature: str, timestamp: str, nonce: str) -> str:
        text = msg.decode("utf-8") if isinstance(msg, bytes) else msg
        envelope = xmltodict.parse(text)["xml"]
        encrypt = envelope["Encrypt"]
        data = sorted([self.token, timestamp, nonce, encrypt])
        if hashlib.sha1("".join(data).encode("utf-8")).hexdigest() != signature:
            raise InvalidSignatureError()
        return PrpCrypt(self.key).decrypt(encrypt, self.app_id)


class TextMessage:
    """What ``parse_message`` hands the application: typed fields of a text message."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.id = int(fields.get("MsgId", 0))
        self.source = fields.get("FromUserName")
        self.target = fields.get("ToUserName")
        self.create_time = datetime.fromtimestamp(int(fields.get("CreateTime", 0)))
        self.type = fields.get("MsgType", "").lower()
        self.content = fields.get("Content", "")
        self.raw = fields


def parse_message(xml: str) -> TextMessage:
    message = xmltodict.parse(xml)["xml"]
    return TextMessage(message)
