"""The browser session a binding link starts: a signed, HttpOnly, SameSite=Lax cookie.

Why signed rather than a random id kept server-side: every sidecar replica must recognise the
cookie, and the store has no table for browser sessions; a signature needs only a key all
replicas share. The key is derived (HMAC-SHA256 with a fixed label) from key material every
replica holds and only the sidecar holds (``sidecar.binding.session_keys``: the accounts'
secrets; never the relay secrets, which the DMZ gateway holds too). With several secrets the
first signs and any of them verifies. The derived key is used for nothing else, and the
material cannot be recovered from it.

Cookie value: ``base64url(JSON {"u": username, "a": account, "e": expiry}) "." base64url(MAC)``.
It holds no secret, only who the browser acts for and until when; it cannot be forged or
extended without the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

COOKIE_NAME = "wxsc_bind"
KEY_LABEL = b"wx-sidecar/binding-browser-session/v1"
MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True)
class BrowserSession:
    username: str
    account: str
    expires_at: float


def derive_key(secret: str) -> bytes:
    """A key for this purpose only, from a relay secret."""
    return hmac.new(secret.encode("utf-8"), KEY_LABEL, hashlib.sha256).digest()


class SessionCookies:
    """Issues and verifies browser-session cookies."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        ttl_s: int,
        secure: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed to sign browser sessions")
        self._keys = [derive_key(s) for s in secrets]
        self._ttl_s = ttl_s
        self._secure = secure
        self._clock = clock

    def __repr__(self) -> str:
        return f"SessionCookies(keys={len(self._keys)}, ttl_s={self._ttl_s})"

    @property
    def ttl_s(self) -> int:
        return self._ttl_s

    def issue(self, username: str, account: str) -> str:
        payload = {"u": username, "a": account, "e": int(self._clock()) + self._ttl_s}
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        return body + "." + _b64(self._mac(self._keys[0], body))

    def read(self, value: str | None) -> BrowserSession | None:
        """The session the cookie names, or None when absent, forged, malformed or expired."""
        if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
            return None
        body, _, mac = value.partition(".")
        try:
            offered = _unb64(mac)
        except ValueError:
            return None
        if not any(hmac.compare_digest(self._mac(key, body), offered) for key in self._keys):
            return None
        try:
            payload = json.loads(_unb64(body).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict):
            return None
        username, account, expiry = payload.get("u"), payload.get("a"), payload.get("e")
        if not isinstance(username, str) or not isinstance(account, str) or not isinstance(expiry, int):
            return None
        if expiry <= self._clock():
            return None
        return BrowserSession(username, account, float(expiry))

    def set_on(self, response: web.StreamResponse, username: str, account: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self.issue(username, account),
            max_age=self._ttl_s,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._secure,
        )

    @staticmethod
    def _mac(key: bytes, body: str) -> bytes:
        return hmac.new(key, body.encode("utf-8", "replace"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


__all__ = ["COOKIE_NAME", "BrowserSession", "SessionCookies", "derive_key"]
