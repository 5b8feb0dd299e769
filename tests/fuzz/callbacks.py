"""Driving the gateway's callback endpoint with hostile input, and judging each answer.

``place`` puts a raw payload where a mode carries it: the plaintext body (account ``plain``),
the encrypted ``<Encrypt>`` of an MP safe or compatible callback (``main``) or of a WeCom one
(``corp``), each correctly signed, so the payload reaches the parser that has to cope with it.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.spool.queue import Spool
from gateway.wechat.crypto import MessageCipher
from tests.fuzz.support import assert_refused
from tests.gateway.conftest import CORP_ID, CORP_KEY, CORP_TOKEN, MP_APP_ID, MP_KEY, MP_TOKEN, NOW, PLAIN_TOKEN
from tests.gateway.helpers import CallbackBuilder, Query, text_message

Place = Literal["plain", "safe", "compat", "wecom"]
PLACES: tuple[Place, ...] = ("plain", "safe", "compat", "wecom")
ENCRYPTED: tuple[Place, ...] = ("safe", "compat", "wecom")

MP = CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=NOW)
PLAIN = CallbackBuilder(PLAIN_TOKEN, None, "wxplain0000000000", now=NOW)
CORP = CallbackBuilder(CORP_TOKEN, CORP_KEY, CORP_ID, now=NOW)
ACCOUNT_OF: dict[Place, str] = {"plain": "plain", "safe": "main", "compat": "main", "wecom": "corp"}
BUILDER_OF: dict[Place, CallbackBuilder] = {"plain": PLAIN, "safe": MP, "compat": MP, "wecom": CORP}


def url(account: str) -> str:
    return f"/wechat/{account}/callback"


def seal(where: Place, inner: bytes) -> str:
    """``inner`` encrypted for the account of ``where`` (raw bytes: they need not be UTF-8)."""
    builder = BUILDER_OF[where]
    assert builder.encoding_aes_key is not None
    return MessageCipher.from_encoding_aes_key(builder.encoding_aes_key, builder.app_id).encrypt(inner)


def place_encrypt(where: Place, encrypt: str) -> tuple[str, Query, bytes]:
    """A correctly signed encrypted callback carrying ``encrypt`` as it is."""
    fields = text_message("outer")
    if where == "safe":
        query, body = MP.mp_safe(fields, encrypt=encrypt)
    elif where == "compat":
        query, body = MP.mp_compat(fields, encrypt=encrypt)
    elif where == "wecom":
        query, body = CORP.wecom_post(fields, encrypt=encrypt)
    else:
        raise ValueError(f"{where} is not an encrypted mode")
    return ACCOUNT_OF[where], query, body


def place(where: Place, payload: bytes) -> tuple[str, Query, bytes]:
    """(account, query, body) of a correctly signed callback whose message is ``payload``."""
    if where == "plain":
        query, _ = PLAIN.mp_plain(text_message())
        return "plain", query, payload
    return place_encrypt(where, seal(where, payload))


class Callbacks:
    """Posts callbacks to the gateway and checks the spool did not move on a refusal."""

    def __init__(self, client: TestClient[web.Request, web.Application], spool: Spool) -> None:
        self.client = client
        self.spool = spool

    @property
    def port(self) -> int:
        port = self.client.port
        assert port is not None
        return port

    async def post(
        self, account: str, query: Query | str, body: bytes, *, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        async with self.client.post(url(account), params=query, data=body, headers=headers) as response:
            return response.status, await response.text()

    async def refused(
        self,
        account: str,
        query: Query | str,
        body: bytes,
        *allowed: int,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Post, assert a 4xx (one of ``allowed``) with a clear reason and an untouched spool; the reason."""
        depth = self.spool.stats().depth
        status, reason = await self.post(account, query, body, headers=headers)
        assert_refused(status, reason, *allowed)
        assert self.spool.stats().depth == depth, "a refused callback was spooled"
        return reason

    async def accepted(self, account: str, query: Query | str, body: bytes) -> None:
        """Post, assert ``success`` and exactly one new event in the spool."""
        depth = self.spool.stats().depth
        status, text = await self.post(account, query, body)
        assert (status, text) == (200, "success")
        assert self.spool.stats().depth == depth + 1

    async def healthy(self) -> None:
        """The server still answers after everything before."""
        async with self.client.get("/healthz") as response:
            assert (response.status, await response.text()) == (200, "ok")
