"""gateway.wechat.crypto against every official vector, and every way a ciphertext can be wrong."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import BadSignature, MalformedRequest, WrongReceiver
from gateway.wechat.crypto import MessageCipher, decode_aes_key, new_nonce, sha1_signature, verify_signature

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"


def raw_encrypt(plain: bytes, key_text: str = KEY) -> str:
    """AES-CBC over bytes we laid out by hand, to forge every malformed plaintext."""
    key = decode_aes_key(key_text)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")


def layout(message: bytes, receive_id: bytes = APP_ID.encode(), *, length: int | None = None) -> bytes:
    size = len(message) if length is None else length
    return b"r" * 16 + size.to_bytes(4, "big") + message + receive_id


def pad32(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


# --- the official vectors ------------------------------------------------------------------


def test_signature_plain_vector_matches(vectors: dict[str, Any]) -> None:
    v = vectors["plain_signature"]
    assert sha1_signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]


def test_signature_mp_sample_signature_and_msg_signature_match(vectors: dict[str, Any]) -> None:
    v = vectors["mp_sample"]
    assert sha1_signature(v["token"], v["timestamp"], v["nonce"]) == v["signature"]
    assert sha1_signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]


def test_decrypt_mp_sample_yields_the_sample_message(vectors: dict[str, Any]) -> None:
    v = vectors["mp_sample"]
    plain = MessageCipher.from_encoding_aes_key(v["encoding_aes_key"], v["app_id"]).decrypt(v["encrypt"])
    for name, value in v["plaintext_fields"].items():
        assert f"<{name}>".encode() in plain and value.encode() in plain


def test_decrypt_mp_sample_has_pad_byte_of_the_vector(vectors: dict[str, Any]) -> None:
    v = vectors["mp_sample"]
    key = decode_aes_key(v["encoding_aes_key"])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = decryptor.update(base64.b64decode(v["encrypt"])) + decryptor.finalize()
    assert raw[-1] == v["pkcs7_pad_byte"]


def test_encrypt_known_random_prefix_matches_published_ciphertext(vectors: dict[str, Any]) -> None:
    v = vectors["mp_encrypt_known_random"]
    cipher = MessageCipher.from_encoding_aes_key(v["encoding_aes_key"], v["app_id"])
    encrypted = cipher.encrypt(v["plaintext"].encode("utf-8"), random_prefix=v["random_prefix"].encode("ascii"))
    assert encrypted == v["encrypt"]


def test_decrypt_known_random_vector_round_trips(vectors: dict[str, Any]) -> None:
    v = vectors["mp_encrypt_known_random"]
    cipher = MessageCipher.from_encoding_aes_key(v["encoding_aes_key"], v["app_id"])
    assert cipher.decrypt(v["encrypt"]).decode("utf-8") == v["plaintext"]


def test_wecom_verify_url_vector_signs_and_decrypts(vectors: dict[str, Any]) -> None:
    w, v = vectors["wecom_sample"], vectors["wecom_sample"]["verify_url"]
    verify_signature(v["msg_signature"], w["token"], v["timestamp"], v["nonce"], v["echostr"])
    cipher = MessageCipher.from_encoding_aes_key(w["encoding_aes_key"], w["corp_id"])
    assert cipher.decrypt(v["echostr"]).decode() == v["expected_reply"]


def test_wecom_post_vector_signs_and_decrypts_with_pad_byte_30(vectors: dict[str, Any]) -> None:
    w, v = vectors["wecom_sample"], vectors["wecom_sample"]["post"]
    verify_signature(v["msg_signature"], w["token"], v["timestamp"], v["nonce"], v["encrypt"])
    cipher = MessageCipher.from_encoding_aes_key(w["encoding_aes_key"], w["corp_id"])
    plain = cipher.decrypt(v["encrypt"])
    assert b"<Content><![CDATA[hello]]></Content>" in plain
    assert v["pkcs7_pad_byte"] == 30  # a 16-byte unpadder would refuse this one


# --- signatures ----------------------------------------------------------------------------


def test_verify_signature_one_changed_character_raises_bad_signature(vectors: dict[str, Any]) -> None:
    v = vectors["plain_signature"]
    forged = v["signature"][:-1] + ("0" if v["signature"][-1] != "0" else "1")
    with pytest.raises(BadSignature):
        verify_signature(forged, v["token"], v["timestamp"], v["nonce"])


def test_verify_signature_uppercase_hex_is_accepted(vectors: dict[str, Any]) -> None:
    v = vectors["plain_signature"]
    verify_signature(v["signature"].upper(), v["token"], v["timestamp"], v["nonce"])


def test_verify_signature_non_ascii_offer_raises_bad_signature() -> None:
    with pytest.raises(BadSignature):
        verify_signature("签名", "token", "1", "2")


# --- encryption ----------------------------------------------------------------------------


def test_encrypt_then_decrypt_round_trips_any_length() -> None:
    cipher = MessageCipher.from_encoding_aes_key(KEY, APP_ID)
    for size in (0, 1, 11, 12, 31, 32, 33, 1000):
        message = secrets.token_bytes(size)
        assert cipher.decrypt(cipher.encrypt(message)) == message


def test_encrypt_pads_to_a_multiple_of_32_bytes() -> None:
    cipher = MessageCipher.from_encoding_aes_key(KEY, APP_ID)
    for size in range(0, 70):
        assert len(base64.b64decode(cipher.encrypt(b"x" * size))) % 32 == 0


def test_encrypt_uses_a_fresh_random_prefix_each_time() -> None:
    cipher = MessageCipher.from_encoding_aes_key(KEY, APP_ID)
    assert cipher.encrypt(b"same") != cipher.encrypt(b"same")


def test_cipher_repr_hides_the_key() -> None:
    assert KEY not in repr(MessageCipher.from_encoding_aes_key(KEY, APP_ID))
    assert "masked" in repr(MessageCipher.from_encoding_aes_key(KEY, APP_ID))


def test_new_nonce_is_ten_random_digits() -> None:
    nonces = {new_nonce() for _ in range(50)}
    assert all(len(n) == 10 and n.isdigit() for n in nonces)
    assert len(nonces) == 50


# --- every malformed ciphertext ------------------------------------------------------------


def test_decrypt_wrong_app_id_raises_wrong_receiver(vectors: dict[str, Any]) -> None:
    v = vectors["mp_sample"]
    with pytest.raises(WrongReceiver):
        MessageCipher.from_encoding_aes_key(v["encoding_aes_key"], "wx0000000000000000").decrypt(v["encrypt"])


def test_decrypt_receiver_with_extra_suffix_raises_wrong_receiver() -> None:
    forged = raw_encrypt(pad32(layout(b"<xml/>", APP_ID.encode() + b"x")))
    with pytest.raises(WrongReceiver):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(forged)


def test_decrypt_bad_base64_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="base64"):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt("not*base64!")


def test_decrypt_non_ascii_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="base64"):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt("密文")


def test_decrypt_partial_block_raises_malformed() -> None:
    with pytest.raises(MalformedRequest, match="blocks"):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(base64.b64encode(b"x" * 20).decode())


def test_decrypt_empty_raises_malformed() -> None:
    with pytest.raises(MalformedRequest):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt("")


@pytest.mark.parametrize("pad", [0, 33, 255])
def test_decrypt_pad_byte_out_of_range_raises_malformed(pad: int) -> None:
    data = layout(b"<xml/>")
    data += b"\x00" * (32 - (len(data) + 1) % 32) + bytes([pad])
    with pytest.raises(MalformedRequest, match="padding"):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(raw_encrypt(data))


def test_decrypt_unequal_pad_bytes_raise_malformed() -> None:
    padded = bytearray(pad32(layout(b"<xml>1</xml>")))
    pad = padded[-1]
    assert pad > 1
    padded[-pad] ^= 0x01
    with pytest.raises(MalformedRequest, match="padding"):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(raw_encrypt(bytes(padded)))


def test_decrypt_length_field_beyond_data_raises_malformed() -> None:
    forged = raw_encrypt(pad32(layout(b"<xml/>", length=10_000)))
    with pytest.raises(MalformedRequest, match="length"):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(forged)


def test_decrypt_length_field_too_short_leaves_receiver_mismatch() -> None:
    forged = raw_encrypt(pad32(layout(b"<xml/>", length=2)))
    with pytest.raises(WrongReceiver):
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(forged)


def test_decrypt_with_another_key_raises_a_request_error(vectors: dict[str, Any]) -> None:
    v = vectors["mp_sample"]
    other = MessageCipher.from_encoding_aes_key("ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210abcdefg", v["app_id"])
    with pytest.raises((MalformedRequest, WrongReceiver)):
        other.decrypt(v["encrypt"])


def test_decode_aes_key_wrong_length_raises_value_error() -> None:
    with pytest.raises(ValueError, match=r"32 bytes|base64"):
        decode_aes_key("short")


# --- properties ----------------------------------------------------------------------------


@given(message=st.binary(max_size=2000))
def test_encrypt_decrypt_round_trips_any_bytes(message: bytes) -> None:
    cipher = MessageCipher.from_encoding_aes_key(KEY, APP_ID)
    assert cipher.decrypt(cipher.encrypt(message)) == message


BASE64_BLOCKS = st.binary(min_size=16, max_size=200).map(lambda b: base64.b64encode(b).decode())


@given(encrypted=st.text(max_size=200) | BASE64_BLOCKS)
def test_decrypt_any_input_raises_only_request_errors(encrypted: str) -> None:
    try:
        MessageCipher.from_encoding_aes_key(KEY, APP_ID).decrypt(encrypted)
    except (MalformedRequest, WrongReceiver):
        pass
