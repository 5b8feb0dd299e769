"""WeChat's callback signing and AES scheme, written independently of ``gateway/wechat/crypto.py``.

The emulator plays WeChat's side, so it encrypts what WeChat encrypts and checks what WeChat
checks. Keeping this implementation separate from the gateway's lets each cross-check the other;
both are pinned to the official vectors in ``tests/data/crypto.json``.

Scheme (MP and WeCom alike): ``key = b64decode(EncodingAESKey + "=")``, AES-256-CBC with
``IV = key[:16]``, PKCS#7 padding to a multiple of 32 bytes, and a plaintext of
16 random bytes ‖ 4-byte big-endian length ‖ message ‖ receive id (appid or corpid).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devtools.emulator.errors import CryptoError

BLOCK = 32
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


def signature(*parts: str) -> str:
    """sha1 over the sorted, concatenated parts: ``signature`` and ``msg_signature`` alike."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def signature_matches(expected: str, *parts: str) -> bool:
    """Constant-time check of a signature a callback server sent back."""
    return hmac.compare_digest(signature(*parts).encode("ascii"), expected.encode("utf-8", "replace"))


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey."""
    if not _AES_KEY.fullmatch(encoding_aes_key):
        raise CryptoError("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    return base64.b64decode(encoding_aes_key + "=")


def _pad(data: bytes) -> bytes:
    amount = BLOCK - len(data) % BLOCK
    return data + bytes([amount]) * amount


def _unpad(data: bytes) -> bytes:
    if not data:
        raise CryptoError("empty plaintext")
    amount = data[-1]
    if not 1 <= amount <= BLOCK or data[-amount:] != bytes([amount]) * amount:
        raise CryptoError("bad PKCS#7 padding")
    return data[:-amount]


def encrypt(encoding_aes_key: str, receive_id: str, message: bytes, random_prefix: bytes | None = None) -> str:
    """Base64 ciphertext of ``message`` for ``receive_id``; the prefix is fixed only by tests."""
    key = aes_key(encoding_aes_key)
    prefix = secrets.token_bytes(16) if random_prefix is None else random_prefix
    if len(prefix) != 16:
        raise CryptoError("the random prefix must be 16 bytes")
    plain = _pad(prefix + struct.pack(">I", len(message)) + message + receive_id.encode("utf-8"))
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


def decrypt(encoding_aes_key: str, receive_id: str, ciphertext: str) -> bytes:
    """The message inside ``ciphertext``; refuses bad base64, padding, length or receive id."""
    key = aes_key(encoding_aes_key)
    try:
        raw = base64.b64decode(ciphertext, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("ciphertext is not base64") from None
    if not raw or len(raw) % 16:
        raise CryptoError("ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = _unpad(decryptor.update(raw) + decryptor.finalize())
    if len(plain) < 20:
        raise CryptoError("plaintext too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise CryptoError("length field exceeds the plaintext")
    message, trailing = plain[20 : 20 + length], plain[20 + length :]
    if not hmac.compare_digest(trailing, receive_id.encode("utf-8")):
        raise CryptoError("receive id (appid/corpid) does not match")
    return message
