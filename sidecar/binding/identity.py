"""Who the browser user is, in the one way ``[binding] identity`` configures.

* ``link`` — the signed browser-session cookie that opening a one-time binding link sets
  (:mod:`sidecar.binding.cookies`); it also fixes the account.
* ``bk_login`` — BlueKing's ``bk_token`` cookie, verified against ``bk_login_url``: the classic
  ``/login/accounts/is_login/?bk_token=…`` answering ``{"result": true, "data": {"username"}}``
  or a user-manage style endpoint (``/login/api/v3/open/bk-tokens/verify/``) answering
  ``{"data": {"bk_username"}}`` and a 4xx when the token is not valid. Good answers are cached
  for :data:`CACHE_TTL_S` seconds under a hash of the token, so a page polling every 1.5 s does
  not load the login service.
* ``header`` — a username header set by an authenticating reverse proxy, believed only when the
  TCP peer is one of ``trusted_proxies`` (anyone else could set it).

Only the configured mode is accepted: a deployment that trusts a proxy header must not also
accept forgeable alternatives, and vice versa.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from common.answers import CHUNK_BYTES, AnswerTooLarge, read_capped
from common.config import Network
from sidecar.binding.cookies import COOKIE_NAME, SessionCookies
from sidecar.binding.errors import LoginUnavailable, NotSignedIn
from sidecar.config import BindingConfig, Identity

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"[\w.@+-]{1,64}")
BK_TOKEN_COOKIE = "bk_token"  # noqa: S105 - a cookie name
CACHE_TTL_S = 60.0
CACHE_MAX = 10_000
LOGIN_TIMEOUT_S = 5.0
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class Principal:
    """The signed-in platform user; ``account`` is set when a binding link fixed it."""

    username: str
    via: Identity
    account: str | None = None


def valid_username(value: object) -> bool:
    """1-64 letters, digits, ``_ . @ + -``; the whole value (``$`` would let a final newline in)."""
    return isinstance(value, str) and bool(USERNAME_RE.fullmatch(value))


class BkLogin:
    """Asks BlueKing who a ``bk_token`` belongs to; remembers good answers briefly."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
        cache_ttl_s: float = CACHE_TTL_S,
    ) -> None:
        self._url = login_endpoint(url)
        self._session = session
        self._clock = clock
        self._ttl = cache_ttl_s
        self._cache: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"BkLogin({str(self._url.with_query(None))!r})"

    async def username(self, bk_token: str) -> str | None:
        """The token's username; None when BlueKing says it is not valid; LoginUnavailable on outage."""
        key = hashlib.sha256(bk_token.encode("utf-8", "replace")).hexdigest()
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        username = await self._ask(bk_token)
        if username is not None:
            self._cache[key] = (username, now + self._ttl)
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        else:
            self._cache.pop(key, None)
        return username

    async def _ask(self, bk_token: str) -> str | None:
        url = self._url.update_query(bk_token=bk_token)
        try:
            async with self._session.get(
                url,
                headers={"Accept": "application/json", "Cookie": f"{BK_TOKEN_COOKIE}={bk_token}"},
                timeout=aiohttp.ClientTimeout(total=LOGIN_TIMEOUT_S),
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = await read_capped(response.content.iter_chunked(CHUNK_BYTES), declared=response.content_length)
        except AnswerTooLarge as exc:
            log.warning("BlueKing login answer refused", extra={"reason": str(exc)})
            raise LoginUnavailable(f"BlueKing login endpoint: {exc}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("BlueKing login unreachable", extra={"error": type(exc).__name__})
            raise LoginUnavailable(f"BlueKing login endpoint unreachable ({type(exc).__name__})") from None
        if status >= 500:
            log.warning("BlueKing login failed", extra={"status": status})
            raise LoginUnavailable(f"BlueKing login endpoint answered HTTP {status}")
        if status != 200:
            return None  # 3xx to a login page, 400 "登录态已过期", 401, 403: not signed in
        return _username_from(raw)


def login_endpoint(url: str) -> URL:
    """The endpoint URL with its trailing slash back.

    The config strips trailing slashes (it treats URLs as bases); BlueKing's endpoints are
    Django views whose paths end in ``/`` and answer a slash-less path with a redirect.
    """
    parsed = URL(url)
    if parsed.path.endswith("/"):
        return parsed
    return parsed.with_path(parsed.path + "/").with_query(parsed.query)


def _username_from(raw: bytes) -> str | None:
    """``data.username`` (is_login) or ``data.bk_username`` (user-manage), unless ``result`` is false."""
    try:
        answer: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LoginUnavailable("BlueKing login endpoint answered something that is not JSON") from None
    if not isinstance(answer, dict) or answer.get("result", True) is not True:
        return None
    data = answer.get("data")
    if not isinstance(data, dict):
        return None
    for field in ("bk_username", "username"):
        value = data.get(field)
        if valid_username(value):
            return str(value)
    return None


def peer_trusted(remote: str | None, networks: Sequence[Network]) -> bool:
    """True when the TCP peer's address lies in one of ``networks``."""
    if not remote:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class IdentityResolver:
    """Turns a request into a :class:`Principal` or raises NotSignedIn."""

    def __init__(self, config: BindingConfig, cookies: SessionCookies, bk_login: BkLogin | None) -> None:
        self._config = config
        self._cookies = cookies
        self._bk_login = bk_login

    def __repr__(self) -> str:
        return f"IdentityResolver(identity={self._config.identity!r})"

    async def resolve(self, request: web.Request) -> Principal:
        mode = self._config.identity
        if mode == "link":
            return self._from_cookie(request)
        if mode == "bk_login":
            return await self._from_bk_token(request)
        return self._from_header(request)

    def _from_cookie(self, request: web.Request) -> Principal:
        session = self._cookies.read(request.cookies.get(COOKIE_NAME))
        if session is None:
            raise NotSignedIn("no valid binding session cookie")
        return Principal(session.username, "link", session.account)

    async def _from_bk_token(self, request: web.Request) -> Principal:
        token = request.cookies.get(BK_TOKEN_COOKIE, "")
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise NotSignedIn("no bk_token cookie")
        if self._bk_login is None:
            raise LoginUnavailable("the BlueKing login client is not running")
        username = await self._bk_login.username(token)
        if username is None:
            raise NotSignedIn("BlueKing says the bk_token is not signed in")
        return Principal(username, "bk_login")

    def _from_header(self, request: web.Request) -> Principal:
        value = request.headers.get(self._config.user_header, "")
        if not peer_trusted(request.remote, self._config.trusted_proxies):
            if value:
                log.warning(
                    "user header from an untrusted peer ignored",
                    extra={"peer": request.remote, "header": self._config.user_header},
                )
            raise NotSignedIn(f"peer {request.remote} is not a trusted proxy")
        if not valid_username(value):
            raise NotSignedIn(f"no valid {self._config.user_header} header")
        return Principal(value, "header")


__all__ = ["BkLogin", "IdentityResolver", "Principal", "peer_trusted", "valid_username"]
