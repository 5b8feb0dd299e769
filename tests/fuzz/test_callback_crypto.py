"""The callback endpoint against broken ciphertexts: bad base64, padding, length fields, receive ids.

Every ciphertext here is correctly signed (``msg_signature`` covers it), so the request gets past
the signature check to the decryption, which is where a sloppy implementation crashes or, worse,
accepts a forged layout. The expected outcome is computed from the layout, independently of
``gateway.wechat.crypto``: accepted only when padding, length field and receive id are all exactly right.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable

from hypothesis import assume, event, given
from hypothesis import strategies as st

from tests.fuzz.callbacks import BUILDER_OF, ENCRYPTED, Callbacks, Place, place_encrypt, seal
from tests.fuzz.support import FUZZ
from tests.gateway.helpers import CallbackBuilder, message_xml, text_message

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
encrypted_places = st.sampled_from(ENCRYPTED)


def decoded(text: str) -> bytes | None:
    """What the ciphertext text means as base64 (None: not base64 at all)."""
    try:
        return base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


@st.composite
def mutations(draw: st.DrawFn, original: str) -> str:
    """One edit of a valid ciphertext: a character changed, dropped or inserted, padding broken,
    blocks cut, or the whole value replaced."""
    kind = draw(st.sampled_from(("change", "drop", "insert", "padding", "truncate", "replace", "junk")))
    at = draw(st.integers(0, len(original) - 1))
    if kind == "change":
        return original[:at] + draw(st.sampled_from(B64_ALPHABET + "=-_ .%\u00e9")) + original[at + 1 :]
    if kind == "drop":
        return original[:at] + original[at + draw(st.integers(1, 8)) :]
    if kind == "insert":
        inserted = draw(st.text(st.sampled_from(B64_ALPHABET + "=!*\t"), min_size=1, max_size=4))
        return original[:at] + inserted + original[at:]
    if kind == "padding":
        return original.rstrip("=") + draw(st.sampled_from(("", "=", "==", "===", "A=", "=A")))
    if kind == "truncate":
        return original[: draw(st.integers(0, len(original) // 4)) * 4]
    if kind == "replace":
        return draw(st.text(max_size=200))
    return original + draw(st.sampled_from(("AAAA", "====", "\x00", "\u2028")))


@FUZZ
@given(where=encrypted_places, data=st.data())
async def test_callback_mutated_ciphertext_is_refused_unless_it_decodes_to_the_same_bytes(
    gw: Callbacks, where: Place, data: st.DataObject
) -> None:
    original = seal(where, message_xml(text_message("mutate me")).encode("utf-8"))
    mutated = data.draw(mutations(original))
    assume(mutated.strip())  # an empty <Encrypt> is a different refusal, tested elsewhere
    account, query, body = place_encrypt(where, mutated)
    if decoded(mutated) == decoded(original):  # non-canonical base64 of the same ciphertext
        event("same bytes: accepted")
        await gw.accepted(account, query, body)
    else:
        await gw.refused(account, query, body, 400, 403)


def unpadded_layout(message: bytes, length: int, receive_id: bytes) -> bytes:
    """16 random bytes ‖ length field ‖ message ‖ receive id (written out here, not via gateway.wechat.crypto)."""
    return secrets.token_bytes(16) + length.to_bytes(4, "big") + message + receive_id


MESSAGES: dict[str, Callable[[], bytes]] = {
    "valid": lambda: message_xml(text_message("layout")).encode("utf-8"),
    "empty": lambda: b"",
    "short": lambda: b"<xml/>",
}


@FUZZ
@given(
    where=encrypted_places,
    message_kind=st.sampled_from(sorted(MESSAGES)),
    length_delta=st.sampled_from((0, 0, 0)) | st.integers(-40, 40) | st.integers(-(2**31), 2**31),
    receive_id=st.none() | st.none() | st.text(max_size=40),
    extra_pad_blocks=st.integers(0, 3),
    pad_value=st.none() | st.none() | st.integers(0, 255),
    corrupt_pad_byte=st.booleans(),
)
async def test_callback_forged_padding_length_and_receive_id_are_refused(
    gw: Callbacks,
    where: Place,
    message_kind: str,
    length_delta: int,
    receive_id: str | None,
    extra_pad_blocks: int,
    pad_value: int | None,
    corrupt_pad_byte: bool,
) -> None:
    builder = BUILDER_OF[where]
    app_id = builder.app_id.encode("utf-8")
    rid = app_id if receive_id is None else receive_id.encode("utf-8")
    assume(rid == app_id or app_id not in rid)  # an id merely ending the way ours does is another test
    message = MESSAGES[message_kind]()
    length = len(message) + length_delta
    assume(0 <= length < 2**32)
    plain = unpadded_layout(message, length, rid)
    count = ((-len(plain)) % 16 or 16) + 16 * extra_pad_blocks  # 1..64 bytes, always block-aligned
    value = count if pad_value is None else pad_value
    padding = bytearray([value]) * count
    if corrupt_pad_byte and count > 1:
        padding[0] ^= 0x55
    account, query, body = place_encrypt(where, builder.forge(plain + bytes(padding)))
    padding_ok = value == count <= 32 and not (corrupt_pad_byte and count > 1)
    if padding_ok and length == len(message) and rid == app_id and message_kind == "valid":
        event("exact layout: accepted")
        await gw.accepted(account, query, body)
    else:
        await gw.refused(account, query, body, 400, 403)


@FUZZ
@given(where=encrypted_places, receive_id=st.text(min_size=1, max_size=64))
async def test_callback_wrong_app_id_is_refused_403(gw: Callbacks, where: Place, receive_id: str) -> None:
    """A well-formed ciphertext for another app id (or corp id): WrongReceiver, never spooled."""
    builder = BUILDER_OF[where]
    assume(builder.app_id not in receive_id)
    stranger = CallbackBuilder(builder.token, builder.encoding_aes_key, receive_id)
    account, query, body = place_encrypt(where, stranger.encrypt(message_xml(text_message("for someone else"))))
    reason = await gw.refused(account, query, body, 403)
    assert "receiver" in reason


@FUZZ
@given(where=encrypted_places, payload=st.binary(max_size=2048))
async def test_callback_decrypted_payload_of_any_bytes_is_refused(gw: Callbacks, where: Place, payload: bytes) -> None:
    await gw.refused(*place_encrypt(where, seal(where, payload)), 400)
