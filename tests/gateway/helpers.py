"""Reusable test helpers: valid WeChat callbacks in every mode, a gateway.toml writer, a fake spool.

``CallbackBuilder`` plays WeChat's servers: it builds one *valid* request per mode, so a test can
break exactly one thing (a signature, a byte of ciphertext, a timestamp) and see exactly one
refusal. Other suites (e2e, bench, the emulator's tests) may import it.

    wx = CallbackBuilder(token, encoding_aes_key, app_id)
    query, body = wx.mp_safe(text_message("hello"), timestamp="1700000000")
    resp = await client.post("/wechat/main/callback", params=query, data=body)
    reply = wx.open_reply(await resp.text())     # checks MsgSignature, decrypts, parses
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import xmltodict
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from contract import Envelope, Reply, generate_secret
from gateway.wechat.crypto import MessageCipher, decode_aes_key

Query = dict[str, str]

_msg_ids = itertools.count(6_054_768_590_064_713_728)

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    + "]>\n<xml><ToUserName>&lol9;</ToUserName></xml>"
)


def sha1_sign(*parts: str) -> str:
    """WeChat's signature, written out independently of gateway.wechat.crypto on purpose."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def message_xml(fields: Mapping[str, str], *, cdata: bool = True) -> str:
    """A message body as WeChat writes it: numbers bare, text in CDATA (or escaped text)."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if value.isdigit() or not cdata:
            parts.append(f"<{name}>{escape(value)}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts)


def text_message(
    content: str = "hello",
    *,
    to_user: str = "gh_10f6c3c3ac5a",
    from_user: str = "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
    create_time: str = "1700000000",
    msg_id: str | None = None,
) -> dict[str, str]:
    """A text message with a fresh MsgId (so two calls are two events)."""
    return {
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": create_time,
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id or str(next(_msg_ids)),
    }


def event_message(event: str = "SCAN", event_key: str = "bind_123", **extra: str) -> dict[str, str]:
    fields = {
        "ToUserName": "gh_10f6c3c3ac5a",
        "FromUserName": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        "CreateTime": "1700000000",
        "MsgType": "event",
        "Event": event,
        "EventKey": event_key,
    }
    fields.update(extra)
    return fields


@dataclass
class CallbackBuilder:
    """Builds valid callbacks for one account: ``token``, ``encoding_aes_key`` and the receive id.

    Every method takes ``timestamp`` and ``nonce``; by default the timestamp is ``now`` (an int
    you set to match the gateway's injected clock) and the nonce is random digits.
    """

    token: str
    encoding_aes_key: str | None = None
    app_id: str = ""
    now: int = 1_700_000_000

    def _cipher(self) -> MessageCipher:
        if self.encoding_aes_key is None:
            raise ValueError("this builder has no EncodingAESKey")
        return MessageCipher.from_encoding_aes_key(self.encoding_aes_key, self.app_id)

    def _stamp(self, timestamp: str | None, nonce: str | None) -> tuple[str, str]:
        return (timestamp or str(self.now), nonce or str(secrets.randbelow(9 * 10**8) + 10**9))

    def encrypt(self, plaintext: str, *, random_prefix: bytes | None = None) -> str:
        return self._cipher().encrypt(plaintext.encode("utf-8"), random_prefix=random_prefix)

    def forge(self, plain: bytes) -> str:
        """Raw AES-CBC of bytes laid out by hand (no padding added): for malformed ciphertexts."""
        if self.encoding_aes_key is None:
            raise ValueError("this builder has no EncodingAESKey")
        key = decode_aes_key(self.encoding_aes_key)
        encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def layout(self, message: str, *, length: int | None = None, receive_id: str | None = None) -> bytes:
        """16 random bytes ‖ length ‖ message ‖ receive id, unpadded; ``length`` may lie."""
        data = message.encode("utf-8")
        size = len(data) if length is None else length
        rid = (self.app_id if receive_id is None else receive_id).encode("utf-8")
        return secrets.token_bytes(16) + size.to_bytes(4, "big") + data + rid

    # --- MP --------------------------------------------------------------------------------
    def mp_verify(
        self, echostr: str = "1616140317555161061", *, timestamp: str | None = None, nonce: str | None = None
    ) -> Query:
        timestamp, nonce = self._stamp(timestamp, nonce)
        return {
            "signature": sha1_sign(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }

    def mp_plain(
        self, fields: Mapping[str, str], *, timestamp: str | None = None, nonce: str | None = None
    ) -> tuple[Query, bytes]:
        timestamp, nonce = self._stamp(timestamp, nonce)
        query = {
            "signature": sha1_sign(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": fields.get("FromUserName", ""),
        }
        return query, message_xml(fields).encode("utf-8")

    def mp_safe(
        self,
        fields: Mapping[str, str],
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        encrypt: str | None = None,
    ) -> tuple[Query, bytes]:
        """``<ToUserName>`` and ``<Encrypt>`` only; ``encrypt`` overrides the ciphertext (signed as given)."""
        outer = {"ToUserName": fields.get("ToUserName", "")}
        return self._mp_encrypted(fields, outer, timestamp, nonce, encrypt)

    def mp_compat(
        self,
        fields: Mapping[str, str],
        *,
        outer: Mapping[str, str] | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
        encrypt: str | None = None,
    ) -> tuple[Query, bytes]:
        """Plaintext fields beside ``<Encrypt>``; pass ``outer`` to make them disagree with it."""
        return self._mp_encrypted(fields, outer if outer is not None else fields, timestamp, nonce, encrypt)

    def _mp_encrypted(
        self,
        fields: Mapping[str, str],
        outer: Mapping[str, str],
        timestamp: str | None,
        nonce: str | None,
        encrypt: str | None,
    ) -> tuple[Query, bytes]:
        timestamp, nonce = self._stamp(timestamp, nonce)
        encrypt = encrypt or self.encrypt(message_xml(fields))
        query = {
            "signature": sha1_sign(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": fields.get("FromUserName", ""),
            "encrypt_type": "aes",
            "msg_signature": sha1_sign(self.token, timestamp, nonce, encrypt),
        }
        body = message_xml({**outer, "Encrypt": encrypt})
        return query, body.encode("utf-8")

    # --- WeCom -----------------------------------------------------------------------------
    def wecom_verify(
        self,
        echo: str = "1616140317555161061",
        *,
        timestamp: str | None = None,
        nonce: str | None = None,
        echostr: str | None = None,
    ) -> Query:
        """``echo`` is the plaintext the gateway must answer; ``echostr`` overrides its ciphertext."""
        timestamp, nonce = self._stamp(timestamp, nonce)
        echostr = echostr or self.encrypt(echo)
        return {
            "msg_signature": sha1_sign(self.token, timestamp, nonce, echostr),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }

    def wecom_post(
        self,
        fields: Mapping[str, str],
        *,
        agent_id: str = "1000002",
        timestamp: str | None = None,
        nonce: str | None = None,
        encrypt: str | None = None,
    ) -> tuple[Query, bytes]:
        timestamp, nonce = self._stamp(timestamp, nonce)
        encrypt = encrypt or self.encrypt(message_xml(fields))
        query = {
            "msg_signature": sha1_sign(self.token, timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = message_xml({"ToUserName": self.app_id, "Encrypt": encrypt, "AgentID": agent_id})
        return query, body.encode("utf-8")

    # --- replies ---------------------------------------------------------------------------
    def open_reply(self, body: str) -> dict[str, Any]:
        """Check an encrypted reply's MsgSignature, decrypt it and return its fields."""
        envelope = xmltodict.parse(body)["xml"]
        expected = sha1_sign(self.token, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
        if envelope["MsgSignature"] != expected:
            raise AssertionError("reply MsgSignature does not match")
        inner = self._cipher().decrypt(envelope["Encrypt"]).decode("utf-8")
        return dict(xmltodict.parse(inner)["xml"])


def pad32(data: bytes) -> bytes:
    """WeChat's PKCS#7 to a multiple of 32 bytes."""
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


def write_config(tmp_path: Path, accounts: str, *, relay: str | None = None, server: str = "", extra: str = "") -> Path:
    """A gateway.toml in ``tmp_path`` with the given ``[[accounts]]`` text; spool inside tmp_path."""
    relay = relay or (
        '[relay]\nmode = "push"\npush_url = "http://127.0.0.1:9/relay/v1/events"\n'
        f'secrets = ["{generate_secret()}"]\n'
    )
    text = (
        f'{extra}[server]\nlisten = "127.0.0.1:0"\n{server}\n'
        f'[spool]\npath = "spool.sqlite3"\n\n{relay}\n{accounts}'
    )
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class FakeSpool:
    """The spool as the callback handlers see it (gateway.keys.EventSpool), in memory.

    ``answer`` plays the sidecar: called for each new event, it returns the reply to deliver
    after ``answer_delay_s`` (None: acknowledge without reply). By default every event is
    acknowledged at once without a reply; set ``answer = None`` for a sidecar that never answers.
    """

    answer: Callable[[Envelope], Reply | None] | None = field(default=lambda envelope: None)
    answer_delay_s: float = 0.0
    fail: bool = False
    events: dict[str, Envelope] = field(default_factory=dict)
    commits: int = 0
    _acked: dict[str, Reply | None] = field(default_factory=dict)
    _done: dict[str, asyncio.Event] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def commit(self, envelope: Envelope) -> bool:
        from gateway.errors import SpoolUnavailable

        self.commits += 1
        if self.fail:
            raise SpoolUnavailable("disk full")
        if envelope["id"] in self.events:
            return False
        self.events[envelope["id"]] = envelope
        self._done.setdefault(envelope["id"], asyncio.Event())
        if self.answer is not None:
            task = asyncio.get_running_loop().create_task(self._acknowledge_later(envelope))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def _acknowledge_later(self, envelope: Envelope) -> None:
        await asyncio.sleep(self.answer_delay_s)
        assert self.answer is not None
        self.acknowledge(envelope["id"], self.answer(envelope))

    def acknowledge(self, event_id: str, reply: Reply | None) -> None:
        self._acked[event_id] = reply
        self._done.setdefault(event_id, asyncio.Event()).set()

    async def commit_and_wait_reply(self, envelope: Envelope, deadline: float) -> tuple[bool, Reply | None]:
        new = await self.commit(envelope)
        return new, await self.wait_reply(envelope["id"], max(0.0, deadline - asyncio.get_running_loop().time()))

    async def contains(self, event_id: str) -> bool:
        return event_id in self.events

    async def wait_reply(self, event_id: str, timeout_s: float) -> Reply | None:
        done = self._done.setdefault(event_id, asyncio.Event())
        try:
            await asyncio.wait_for(done.wait(), timeout_s)
        except TimeoutError:
            return None
        return self._acked.get(event_id)

    async def writable(self) -> bool:
        return not self.fail

    def stats(self) -> FakeStats:
        pending = [e for e in self.events if e not in self._acked]
        return FakeStats(depth=len(pending), oldest_unacked_age_s=0.0)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


@dataclass(frozen=True)
class FakeStats:
    depth: int
    oldest_unacked_age_s: float
