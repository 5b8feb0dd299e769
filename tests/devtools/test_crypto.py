"""The emulator's own WeChat crypto against the official vectors (independent of gateway/wechat/crypto.py)."""

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devtools.emulator import crypto
from devtools.emulator.errors import CryptoError
from devtools.emulator.xmlmsg import parse_xml


def _raw_prefix(key: str, ciphertext: str) -> bytes:
    raw_key = base64.b64decode(key + "=")
    decryptor = Cipher(algorithms.AES(raw_key), modes.CBC(raw_key[:16])).decryptor()
    return (decryptor.update(base64.b64decode(ciphertext)) + decryptor.finalize())[:16]


def test_signature_matches_plain_vector(vectors):
    v = vectors["plain_signature"]
    assert crypto.signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]


def test_signature_matches_mp_sample_signature_and_msg_signature(vectors):
    v = vectors["mp_sample"]
    assert crypto.signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]
    assert crypto.signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]


def test_decrypt_mp_sample_yields_its_message(vectors):
    v = vectors["mp_sample"]
    fields = parse_xml(crypto.decrypt(v["encoding_aes_key"], v["app_id"], v["encrypt"]))
    assert fields == v["plaintext_fields"]


def test_encrypt_with_known_prefix_matches_published_ciphertext(vectors):
    v = vectors["mp_encrypt_known_random"]
    encrypted = crypto.encrypt(
        v["encoding_aes_key"], v["app_id"], v["plaintext"].encode(), random_prefix=v["random_prefix"].encode()
    )
    assert encrypted == v["encrypt"]


def test_encrypt_pads_to_32_bytes_like_the_wecom_sample(vectors):
    v = vectors["wecom_sample"]
    post = v["post"]
    message = crypto.decrypt(v["encoding_aes_key"], v["corp_id"], post["encrypt"])
    prefix = _raw_prefix(v["encoding_aes_key"], post["encrypt"])
    assert crypto.encrypt(v["encoding_aes_key"], v["corp_id"], message, random_prefix=prefix) == post["encrypt"]
    assert parse_xml(message) == post["plaintext_fields"]


def test_wecom_verify_url_vector_signature_and_echostr(vectors):
    v = vectors["wecom_sample"]
    u = v["verify_url"]
    assert crypto.signature(v["token"], u["timestamp"], u["nonce"], u["echostr"]) == u["msg_signature"]
    assert crypto.decrypt(v["encoding_aes_key"], v["corp_id"], u["echostr"]).decode() == u["expected_reply"]


def test_decrypt_refuses_wrong_receive_id(vectors):
    v = vectors["mp_sample"]
    with pytest.raises(CryptoError, match="receive id"):
        crypto.decrypt(v["encoding_aes_key"], "wx0000000000000000", v["encrypt"])


@pytest.mark.parametrize("ciphertext", ["not base64!", "", base64.b64encode(b"x" * 15).decode()])
def test_decrypt_refuses_malformed_ciphertext(ciphertext):
    with pytest.raises(CryptoError):
        crypto.decrypt("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx", ciphertext)


def test_decrypt_refuses_bad_padding():
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    raw_key = base64.b64decode(key + "=")
    encryptor = Cipher(algorithms.AES(raw_key), modes.CBC(raw_key[:16])).encryptor()
    bad = base64.b64encode(encryptor.update(b"\x00" * 31 + b"\x21") + encryptor.finalize()).decode()
    with pytest.raises(CryptoError, match="padding"):
        crypto.decrypt(key, "wx", bad)


def test_round_trip_with_random_prefix_differs_each_time():
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    first, second = crypto.encrypt(key, "wxapp", b"hello"), crypto.encrypt(key, "wxapp", b"hello")
    assert first != second
    assert crypto.decrypt(key, "wxapp", first) == crypto.decrypt(key, "wxapp", second) == b"hello"


def test_aes_key_refuses_wrong_length():
    with pytest.raises(CryptoError):
        crypto.aes_key("short")
