"""The WeChat server URL: ``GET|POST /wechat/{account}/callback`` (and BlueKing's legacy path).

A POST is answered only after its event is durably in the spool; the answer is the sidecar's
passive reply when one arrives within the account's reply budget, else ``success``.

Order of checks, cheapest and least trusting first: account, query parameters, signature, body
size, XML markup, decryption (padding, length, receive id), message fields, freshness. Every
failure is a :mod:`gateway.errors` value, mapped to HTTP once in ``gateway.app``'s middleware.

Freshness versus WeChat's retries: a retry repeats the query and body byte for byte, so it
carries the original timestamp. Inside ``max_clock_skew`` it passes and the spool's dedupe turns
it into a no-op commit. Outside the window the event id (computed after decryption) is looked up:
an event the spool already holds is answered like any repeat (its reply, if the sidecar gave one,
else ``success``); only an event never seen is refused as stale. A retry is therefore never
refused, and a stale request can never add an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from common.logs import short_id
from contract import Mode, make_envelope
from gateway.config import AccountConfig, GatewayConfig
from gateway.errors import (
    BodyTooLarge,
    EncryptionRequired,
    GatewayError,
    MalformedRequest,
    StaleRequest,
    UnknownAccount,
)
from gateway.keys import CLOCK, CONFIG, METRICS, SPOOL
from gateway.metrics import GatewayMetrics
from gateway.wechat.crypto import MessageCipher, new_nonce, sha1_signature
from gateway.wechat.verify import is_fresh, param, timestamp_param, verify_msg_signature, verify_plain_signature
from gateway.wechat.wxxml import Fields, encrypted_reply_xml, parse_fields, text_reply_xml

__all__ = ["ENDPOINTS", "LEGACY_PATH", "Endpoint", "endpoints", "setup_callbacks"]

log = logging.getLogger("gateway.wechat.callback")

CALLBACK_PATH = "/wechat/{account}/callback"
LEGACY_PATH = "/console/user_center/weixin/mp/callback/"
REQUIRED_FIELDS = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
SUCCESS = "success"


@dataclass(frozen=True)
class Endpoint:
    """One account's callback endpoint: its config and, when it has an EncodingAESKey, its cipher."""

    account: AccountConfig
    cipher: MessageCipher | None


ENDPOINTS: web.AppKey[Mapping[str, Endpoint]] = web.AppKey("endpoints")


def endpoints(config: GatewayConfig) -> dict[str, Endpoint]:
    """Build every account's endpoint once (pure: decodes keys, opens nothing)."""
    return {
        account.name: Endpoint(
            account,
            MessageCipher.from_encoding_aes_key(account.encoding_aes_key.reveal(), account.app_id)
            if account.encoding_aes_key is not None
            else None,
        )
        for account in config.accounts
    }


def setup_callbacks(app: web.Application, config: GatewayConfig) -> None:
    """Publish the endpoints and add the callback routes (legacy path only if an account wants it)."""
    app[ENDPOINTS] = endpoints(config)
    app.router.add_get(CALLBACK_PATH, verify_url)
    app.router.add_post(CALLBACK_PATH, receive)
    if config.legacy_account() is not None:
        app.router.add_get(LEGACY_PATH, verify_url)
        app.router.add_post(LEGACY_PATH, receive)


@dataclass(frozen=True)
class Callback:
    """A POST whose signature checked out and whose message is decrypted and well-formed."""

    mode: Mode
    encrypted: bool
    timestamp: str
    message: Fields


class _Tally:
    """Counts one callback exactly once under its account, mode (once known) and outcome, and times it."""

    def __init__(self, metrics: GatewayMetrics, account: str, mode: str) -> None:
        self.metrics, self.account, self.mode = metrics, account, mode
        self.started = time.perf_counter()

    def done(self, outcome: str) -> None:
        self.metrics.callbacks.labels(self.account, self.mode, outcome).inc()
        self.metrics.callback_seconds.labels(self.account, self.mode).observe(time.perf_counter() - self.started)


@contextlib.contextmanager
def _tally(request: web.Request, account: str, mode: str) -> Iterator[_Tally]:
    tally = _Tally(request.app[METRICS], account, mode)
    try:
        yield tally
    except GatewayError as exc:
        tally.done(_slug(exc))
        raise
    except Exception:
        tally.done("error")
        raise


async def verify_url(request: web.Request) -> web.Response:
    """Server-URL verification: MP echoes ``echostr``; WeCom decrypts it and echoes the plaintext."""
    endpoint = _endpoint(request)
    account = endpoint.account
    with _tally(request, account.name, "verify") as tally:
        query = request.query
        token = account.token.reveal()
        if account.kind == "wecom":
            # Base64 never holds a space: a "+" sent unescaped arrives as one, so put it back.
            echostr = param(query, "echostr").replace(" ", "+")
            verify_msg_signature(query, token, echostr)
            _require_fresh(request, account, timestamp_param(query))
            answer = _utf8(_cipher(endpoint).decrypt(echostr), "echostr")
        else:
            verify_plain_signature(query, token)
            _require_fresh(request, account, timestamp_param(query))
            answer = param(query, "echostr")
        tally.done("verified")
        log.info("server URL verified", extra={"account": account.name, "kind": account.kind})
        return web.Response(text=answer, content_type="text/plain")


async def receive(request: web.Request) -> web.Response:
    """A message or event: verify, decrypt, spool durably, then answer (reply or ``success``)."""
    started = asyncio.get_running_loop().time()
    endpoint = _endpoint(request)
    with _tally(request, endpoint.account.name, "unknown") as tally:
        callback = await _verified(request, endpoint, tally)
        return await _deliver(request, endpoint, callback, tally, started)


async def _verified(request: web.Request, endpoint: Endpoint, tally: _Tally) -> Callback:
    account = endpoint.account
    query = request.query
    token = account.token.reveal()
    if not _is_encrypted(account, query):
        tally.mode = "plain"
        verify_plain_signature(query, token)
        if account.require_encryption:
            raise EncryptionRequired()
        message = _message(parse_fields(await _body(request), max_bytes=_max_bytes(request)))
        return Callback("plain", False, timestamp_param(query), message)
    tally.mode = "safe"
    outer = parse_fields(await _body(request), max_bytes=_max_bytes(request))
    encrypt = outer.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        raise MalformedRequest("encrypted callback without <Encrypt>")
    verify_msg_signature(query, token, encrypt)
    mode: Mode = "compat" if account.kind == "mp" and set(outer) - {"ToUserName", "Encrypt"} else "safe"
    tally.mode = mode
    # In compatible mode the plaintext fields beside <Encrypt> are unauthenticated: the
    # decrypted payload is the truth and the outer fields are ignored.
    inner = _cipher(endpoint).decrypt(encrypt)
    message = _message(parse_fields(inner, max_bytes=_max_bytes(request)))
    return Callback(mode, True, timestamp_param(query), message)


async def _deliver(
    request: web.Request, endpoint: Endpoint, callback: Callback, tally: _Tally, started: float
) -> web.Response:
    account = endpoint.account
    spool = request.app[SPOOL]
    now = request.app[CLOCK]()
    envelope = make_envelope(
        account.name, account.kind, callback.mode, callback.message, datetime.fromtimestamp(now, UTC)
    )
    event_id = envelope["id"]
    deadline = started + account.reply_budget_s
    if is_fresh(callback.timestamp, now, account.max_clock_skew_s):
        new, reply = await spool.commit_and_wait_reply(envelope, deadline)
    elif await spool.contains(event_id):
        new = False  # a late retry of an event we hold: answer it like any repeat
        reply = await spool.wait_reply(event_id, max(0.0, deadline - asyncio.get_running_loop().time()))
    else:
        raise StaleRequest(f"timestamp {callback.timestamp} is outside the {account.max_clock_skew_s} s window")
    outcome = "replied" if reply is not None else "accepted" if new else "duplicate"
    tally.done(outcome)
    # An accepted callback is the common case and is counted in wxgw_callbacks_total; a line for
    # each would be a sizeable share of the CPU a callback costs, so it is logged at debug only.
    level = logging.DEBUG if outcome == "accepted" else logging.INFO
    if log.isEnabledFor(level):
        log.log(
            level,
            "callback answered",
            extra={
                "account": account.name,
                "mode": callback.mode,
                "event_id": event_id,
                "user": short_id(_text(callback.message.get("FromUserName"))),
                "outcome": outcome,
            },
        )
    if reply is None:
        return web.Response(text=SUCCESS, content_type="text/plain")
    request.app[METRICS].replies.labels(account.name, "sent").inc()
    reply_time = int(request.app[CLOCK]())
    xml = text_reply_xml(callback.message, reply["content"], reply_time)
    if callback.encrypted:
        xml = _seal(endpoint, xml, reply_time)
    return web.Response(text=xml, content_type="application/xml")


def _seal(endpoint: Endpoint, xml: str, timestamp: int) -> str:
    """Encrypt a passive reply and wrap it in the signed envelope WeChat expects."""
    encrypt = _cipher(endpoint).encrypt(xml.encode("utf-8"))
    nonce = new_nonce()
    signature = sha1_signature(endpoint.account.token.reveal(), str(timestamp), nonce, encrypt)
    return encrypted_reply_xml(encrypt, signature, timestamp, nonce)


def _endpoint(request: web.Request) -> Endpoint:
    name = request.match_info.get("account")
    if name is None:  # the legacy path, registered only when an account has legacy_path = true
        legacy = request.app[CONFIG].legacy_account()
        name = legacy.name if legacy is not None else ""
    endpoint = request.app[ENDPOINTS].get(name)
    if endpoint is None:
        raise UnknownAccount(f"no account named {name[:32]!r}")
    return endpoint


def _is_encrypted(account: AccountConfig, query: Mapping[str, str]) -> bool:
    """WeCom always encrypts; MP says so with ``encrypt_type=aes`` (missing or ``raw``: plaintext)."""
    if account.kind == "wecom":
        return True
    encrypt_type = query.get("encrypt_type", "raw")
    if encrypt_type not in ("", "raw", "aes"):
        raise MalformedRequest("query parameter encrypt_type must be raw or aes")
    return encrypt_type == "aes"


def _cipher(endpoint: Endpoint) -> MessageCipher:
    if endpoint.cipher is None:
        raise MalformedRequest("encrypted callback to an account without encoding_aes_key")
    return endpoint.cipher


def _require_fresh(request: web.Request, account: AccountConfig, timestamp: str) -> None:
    if not is_fresh(timestamp, request.app[CLOCK](), account.max_clock_skew_s):
        raise StaleRequest(f"timestamp {timestamp} is outside the {account.max_clock_skew_s} s window")


def _max_bytes(request: web.Request) -> int:
    return request.app[CONFIG].server.max_body_bytes


async def _body(request: web.Request) -> bytes:
    """The raw body, refused early when Content-Length already says it is too large."""
    limit = _max_bytes(request)
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"body of {request.content_length} bytes is over the {limit} byte limit")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(f"body is over the {limit} byte limit") from None
    except web.RequestPayloadError:  # a Content-Encoding that does not decode, a body cut short
        raise MalformedRequest("body could not be read: bad Content-Encoding or incomplete transfer") from None


def _message(fields: Fields) -> Fields:
    """The decrypted message must carry what a reply and the event id are built from."""
    for name in REQUIRED_FIELDS:
        if not isinstance(fields.get(name), str) or not fields[name]:
            raise MalformedRequest(f"message lacks <{name}>")
    return fields


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest(f"decrypted {what} is not UTF-8") from None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _slug(exc: GatewayError) -> str:
    """``BadSignature`` → ``bad_signature``: the outcome label of a refused callback."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
