"""WeChat callback crypto: sha1 signatures and the WXBizMsgCrypt cipher (wechat-protocol.md §1).

Everything here runs on bytes an unauthenticated stranger sent us, so every malformed input ends
as a :mod:`gateway.errors` value: ``BadSignature``, ``MalformedRequest`` or ``WrongReceiver``,
never a ``ValueError`` or ``binascii.Error``. Signatures are compared in constant time; the
random prefix and reply nonces come from :mod:`secrets`.

The same cipher serves MP (receive id = the app id) and WeCom (receive id = the corp id).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.errors import BadSignature, MalformedRequest, WrongReceiver

__all__ = [
    "BLOCK",
    "MessageCipher",
    "decode_aes_key",
    "new_nonce",
    "sha1_signature",
    "verify_signature",
]

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16: the official WeCom vector has pad byte 30
PREFIX = 16  # random bytes in front of every plaintext
LENGTH = 4  # big-endian message length after the prefix
MAX_CIPHERTEXT_CHARS = 4 * 1024 * 1024  # far above any body we accept; bounds the work anyway


def sha1_signature(*parts: str) -> str:
    """``sha1("".join(sorted(parts)))`` as lowercase hex: WeChat's ``signature`` and ``msg_signature``."""
    joined = "".join(sorted(parts)).encode("utf-8")
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - WeChat's protocol fixes sha1


def verify_signature(offered: str, *parts: str, name: str = "signature") -> None:
    """Raise ``BadSignature`` unless ``offered`` is the sha1 signature of ``parts``.

    Constant-time: the popular SDKs compare with ``!=``, which leaks how many leading characters
    matched. ``offered`` is lowered first because hex case carries no meaning.
    """
    expected = sha1_signature(*parts).encode("ascii")
    if not hmac.compare_digest(expected, offered.lower().encode("utf-8")):
        raise BadSignature(f"{name} does not match")


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey (``b64decode(key + "=")``).

    Config validation already guarantees the shape; a bad key here is a programming error, so it
    raises ``ValueError`` rather than a request error.
    """
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("EncodingAESKey is not 43 base64 characters") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey does not decode to 32 bytes")
    return key


def new_nonce() -> str:
    """A 10-digit nonce for encrypted replies, from the OS CSPRNG (WeChat's nonces are digits)."""
    return str(1_000_000_000 + secrets.randbelow(9_000_000_000))


class MessageCipher:
    """AES-256-CBC with ``IV = key[:16]`` and 32-byte PKCS#7, bound to one receive id.

    Plaintext layout: 16 random bytes ‖ 4-byte big-endian length ‖ message ‖ receive id.
    """

    __slots__ = ("_key", "_receive_id")

    def __init__(self, key: bytes, receive_id: str) -> None:
        if len(key) != 32:
            raise ValueError("the AES key must be 32 bytes")
        self._key = key
        self._receive_id = receive_id.encode("utf-8")

    @classmethod
    def from_encoding_aes_key(cls, encoding_aes_key: str, receive_id: str) -> MessageCipher:
        return cls(decode_aes_key(encoding_aes_key), receive_id)

    def __repr__(self) -> str:
        return f"MessageCipher(receive_id={self._receive_id.decode('utf-8')!r}, key=<masked>)"

    def encrypt(self, message: bytes, *, random_prefix: bytes | None = None) -> str:
        """Base64 ciphertext of ``message``; ``random_prefix`` is injectable only for known-answer tests."""
        prefix = secrets.token_bytes(PREFIX) if random_prefix is None else random_prefix
        if len(prefix) != PREFIX:
            raise ValueError(f"random prefix must be {PREFIX} bytes")
        plain = prefix + len(message).to_bytes(LENGTH, "big") + message + self._receive_id
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted``; raises MalformedRequest or WrongReceiver.

        Checks, in order: base64, block alignment, PKCS#7 padding (1..32, all bytes equal), the
        length field, then the trailing receive id (constant-time).
        """
        plain = self._decrypt_padded(encrypted)
        body = plain[PREFIX : len(plain) - _padding(plain)]
        if len(body) < LENGTH:
            raise MalformedRequest("ciphertext too short for its length field")
        size = int.from_bytes(body[:LENGTH], "big")
        if size > len(body) - LENGTH:
            raise MalformedRequest("length field exceeds the decrypted data")
        message, receive_id = body[LENGTH : LENGTH + size], body[LENGTH + size :]
        if not hmac.compare_digest(receive_id, self._receive_id):
            raise WrongReceiver()
        return message

    def _decrypt_padded(self, encrypted: str) -> bytes:
        if len(encrypted) > MAX_CIPHERTEXT_CHARS:
            raise MalformedRequest("ciphertext too long")
        try:
            raw = base64.b64decode(encrypted.strip().encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise MalformedRequest("ciphertext is not valid base64") from None
        if not raw or len(raw) % 16:
            raise MalformedRequest("ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        if len(plain) < PREFIX + LENGTH + 1:
            raise MalformedRequest("ciphertext too short")
        return plain

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))


def _padding(plain: bytes) -> int:
    """The PKCS#7 pad length of ``plain``, validated: 1..32 and every pad byte equal."""
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or pad > len(plain) - PREFIX:
        raise MalformedRequest("bad PKCS#7 padding")
    if plain[-pad:] != bytes([pad]) * pad:
        raise MalformedRequest("bad PKCS#7 padding")
    return pad
