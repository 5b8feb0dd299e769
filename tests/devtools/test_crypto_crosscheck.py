"""The emulator's crypto and the gateway's, written independently, must agree on any input."""

from hypothesis import given
from hypothesis import strategies as st

from devtools.emulator import crypto
from gateway.wechat.crypto import MessageCipher, sha1_signature

KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
receive_ids = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=32)


@given(message=st.binary(max_size=600), receive_id=receive_ids)
def test_gateway_decrypts_what_the_emulator_encrypts(message, receive_id):
    encrypted = crypto.encrypt(KEY, receive_id, message)
    assert MessageCipher.from_encoding_aes_key(KEY, receive_id).decrypt(encrypted) == message


@given(message=st.binary(max_size=600), receive_id=receive_ids)
def test_emulator_decrypts_what_the_gateway_encrypts(message, receive_id):
    encrypted = MessageCipher.from_encoding_aes_key(KEY, receive_id).encrypt(message)
    assert crypto.decrypt(KEY, receive_id, encrypted) == message


@given(parts=st.lists(st.text(max_size=40), min_size=3, max_size=4))
def test_signatures_agree(parts):
    assert crypto.signature(*parts) == sha1_signature(*parts)
