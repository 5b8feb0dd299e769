"""Valid safe-mode MP callbacks, built the way WeChat's servers build them, in bulk.

Each request is a distinct text message (its own MsgId), so for the gateway every request is a
new event that must be committed to the spool: the benchmark never measures the cheap dedupe
path by accident. Requests are written one per line (``path-with-query TAB body``) for wrk's
Lua script and for the in-process driver.

The encryption is the gateway's own ``MessageCipher`` (checked against WeChat's official
vectors in tests/gateway/wechat/test_crypto.py); the signatures are computed here independently.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from contract import event_id
from gateway.wechat.crypto import MessageCipher

ACCOUNT = "main"
APP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
TO_USER = "gh_10f6c3c3ac5a"
PATH = f"/wechat/{ACCOUNT}/callback"
USERS = 500  # distinct followers the messages come from
MSG_ID_BASE = 7_000_000_000_000_000_000


@dataclass(frozen=True)
class Request:
    """One callback: the path with its signed query string, the body, and the event id it yields."""

    path: str
    body: str
    msg_id: str

    @property
    def event_id(self) -> str:
        return event_id(ACCOUNT, {"MsgId": self.msg_id})


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def openid(n: int) -> str:
    """A follower's openid: 28 characters like WeChat's, stable per follower number."""
    return "oBench" + hashlib.sha256(str(n).encode()).hexdigest()[:22]


def message_xml(msg_id: int, create_time: int) -> str:
    user = openid(msg_id % USERS)
    return (
        f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName>"
        f"<FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[status of alert #{msg_id % 100000}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def safe_request(cipher: MessageCipher, msg_id: int, timestamp: int) -> Request:
    """A safe-mode callback as WeChat sends it: signature + msg_signature, only <Encrypt> in the body."""
    nonce = str(1_000_000_000 + secrets.randbelow(9_000_000_000))
    encrypt = cipher.encrypt(message_xml(msg_id, timestamp).encode("utf-8"))
    stamp = str(timestamp)
    query = (
        f"signature={_sha1(TOKEN, stamp, nonce)}&timestamp={stamp}&nonce={nonce}"
        f"&openid={openid(msg_id % USERS)}&encrypt_type=aes&msg_signature={_sha1(TOKEN, stamp, nonce, encrypt)}"
    )
    body = f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return Request(f"{PATH}?{query}", body, str(msg_id))


def generate(count: int, *, first_msg_id: int, timestamp: int | None = None) -> Iterator[Request]:
    """``count`` distinct callbacks with MsgIds ``first_msg_id, first_msg_id + 1, ...``."""
    cipher = MessageCipher.from_encoding_aes_key(ENCODING_AES_KEY, APP_ID)
    stamp = int(time.time()) if timestamp is None else timestamp
    for n in range(count):
        yield safe_request(cipher, first_msg_id + n, stamp)


def write_requests(path: Path, requests: Iterator[Request]) -> int:
    """One request per line (``path TAB body``); returns how many were written."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for request in requests:
            out.write(f"{request.path}\t{request.body}\n")
            count += 1
    return count
