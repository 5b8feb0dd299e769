"""No decryption oracle: without the Token, every ciphertext gets the same answer.

AES-CBC with a fixed IV and no MAC (WeChat's scheme) would leak plaintext through a padding
oracle if a stranger could tell "bad padding" from "bad length" from "wrong receiver". The
gateway checks ``msg_signature`` (which covers the ciphertext and needs the Token) before it
decrypts anything, so mutations of a captured ciphertext, signed without the Token, all get
the same 403 and the same one line, and nothing is spooled.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.config import load_config
from tests.gateway.conftest import (
    ACCOUNTS,
    CORP_ID,
    CORP_KEY,
    MP_APP_ID,
    MP_KEY,
    MP_TOKEN,
    NOW,
    FakeClock,
    HealthyRelay,
    fake_app,
)
from tests.gateway.helpers import CallbackBuilder, FakeSpool, text_message, write_config

AppClient = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[AppClient]]
# The attacker has the EncodingAESKey's ciphertexts (captured), not the Token.
MP = CallbackBuilder("guessedtoken", MP_KEY, MP_APP_ID, now=NOW)
WECOM = CallbackBuilder("guessedtoken", CORP_KEY, CORP_ID, now=NOW)


def mutations(ciphertext: str) -> dict[str, str]:
    raw = base64.b64decode(ciphertext)
    flip_last = raw[:-17] + bytes([raw[-17] ^ 0x01]) + raw[-16:]  # changes the last block's padding
    flip_first = bytes([raw[0] ^ 0x80]) + raw[1:]  # garbles the length field's block
    return {
        "genuine": ciphertext,
        "padding": base64.b64encode(flip_last).decode(),
        "length": base64.b64encode(flip_first).decode(),
        "truncated": base64.b64encode(raw[:-16]).decode(),
        "partial block": base64.b64encode(raw[:-3]).decode(),
        "not base64": "%%%" + ciphertext[3:],
        "other receiver": CallbackBuilder("x", MP_KEY, "wxsomeoneelse00000").encrypt("<xml/>"),
    }


@pytest.fixture
async def gateway(aiohttp_client: ClientFactory, tmp_path: Path) -> tuple[AppClient, FakeSpool]:
    spool = FakeSpool()
    config = load_config(write_config(tmp_path, ACCOUNTS))
    return await aiohttp_client(fake_app(config, spool, HealthyRelay(), FakeClock())), spool


async def test_mp_safe_mutated_ciphertexts_without_the_token_are_indistinguishable(
    gateway: tuple[AppClient, FakeSpool],
) -> None:
    client, spool = gateway
    captured = MP.encrypt("<xml><ToUserName>gh</ToUserName></xml>")
    answers = set()
    for variant in mutations(captured).values():
        query, body = MP.mp_safe(text_message(), encrypt=variant)
        response = await client.post("/wechat/main/callback", params=query, data=body)
        answers.add((response.status, await response.text()))
    assert answers == {(403, "msg_signature does not match")}
    assert spool.events == {}


async def test_mp_safe_mutated_ciphertexts_with_the_token_would_be_told_apart(
    gateway: tuple[AppClient, FakeSpool],
) -> None:
    """The control: signed with the Token, the same mutations get different refusals, so the
    sameness above comes from checking the signature first, not from vague error messages."""
    client, _ = gateway
    owner = CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=NOW)
    captured = owner.encrypt("<xml><ToUserName>gh</ToUserName></xml>")
    answers = set()
    for name, variant in mutations(captured).items():
        if name != "genuine":
            query, body = owner.mp_safe(text_message(), encrypt=variant)
            response = await client.post("/wechat/main/callback", params=query, data=body)
            answers.add((response.status, await response.text()))
    assert len(answers) >= 4


async def test_wecom_mutated_ciphertexts_without_the_token_are_indistinguishable(
    gateway: tuple[AppClient, FakeSpool],
) -> None:
    client, spool = gateway
    captured = WECOM.encrypt("<xml><ToUserName>ww</ToUserName></xml>")
    answers = set()
    for variant in mutations(captured).values():
        query, body = WECOM.wecom_post(text_message(), encrypt=variant)
        posted = await client.post("/wechat/corp/callback", params=query, data=body)
        answers.add((posted.status, await posted.text()))
        verified = await client.get("/wechat/corp/callback", params=WECOM.wecom_verify(echostr=variant))
        answers.add((verified.status, await verified.text()))
    assert answers == {(403, "msg_signature does not match")}
    assert spool.events == {}
