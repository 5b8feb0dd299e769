"""Who is calling our API: BlueKing-style caller authentication (bk-compat.md, "Caller auth").

Three ways in, all checked against ``[[clients]]``:

* ``bk_app_code`` + ``bk_app_secret`` (legacy spellings ``app_code`` + ``app_secret``), as
  query, JSON or form parameters, or in the JSON header ``X-Bkapi-Authorization``;
* ``bk_signature``: base64 HMAC-SHA1 with the app secret over
  ``METHOD + path + "?" + "&".join(sorted("k=v" of the query without bk_signature, plus
  data=<raw body> when there is one))`` — what BlueKing's SDKs send — with ``bk_timestamp``
  within 300 s and ``bk_nonce`` not seen before in the window.

A signed request must read one way only, since the handler reads what the signature covers: a
query key given twice (the SDKs send a dict, so never twice) or a query ``data`` beside a body
(the canonical string's ``data`` is the body) is refused as a bad signature. Otherwise a captured
request could be altered by prefixing a repeated key (finding F5, docs/SECURITY.md).

Seen nonces are kept in this process only: a replica that did not see the first request would
accept a replay inside the window. Secrets are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.config import ClientConfig
from sidecar.errors import BadAppSecret, BadSignature, MissingCredentials, PermissionDenied, StaleSignature, UnknownApp

WINDOW_S = 300
AUTH_HEADER = "X-Bkapi-Authorization"
Permission = Literal["get_token", "refresh_token"]


@dataclass(frozen=True)
class Caller:
    client: ClientConfig
    scheme: Literal["secret", "signature"]
    username: str = ""  # bk_username when the caller named a user (not authenticated by us)

    @property
    def app_code(self) -> str:
        return self.client.app_code


class CallerAuth:
    """Authenticates callers; one per app (it remembers nonces)."""

    def __init__(
        self, clients: Sequence[ClientConfig], *, clock: Callable[[], float] = time.time, window_s: int = WINDOW_S
    ) -> None:
        self._clients = {c.app_code: c for c in clients}
        self._clock = clock
        self._window_s = window_s
        self._nonces: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __repr__(self) -> str:
        return f"CallerAuth(clients={sorted(self._clients)})"

    def authenticate(
        self,
        params: Mapping[str, Any],
        *,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Caller:
        """The authenticated caller, or an AuthError subclass saying what is wrong.

        ``params`` are all request parameters merged (query, then JSON or form body); ``query``
        and ``body`` are the raw parts the signature covers.
        """
        merged = {**_header_params(headers or {}), **params}
        app_code = _text(merged, "bk_app_code", "app_code")
        if not app_code:
            raise MissingCredentials("bk_app_code is required")
        client = self._clients.get(app_code)
        if client is None:
            raise UnknownApp(f"app code {app_code[:64]!r} is not allowed to call this API")
        username = _text(merged, "bk_username", "username")
        if "bk_signature" in merged:
            self._check_signature(client, merged, method=method, path=path, query=query, body=body)
            return Caller(client, "signature", username)
        secret = _text(merged, "bk_app_secret", "app_secret")
        if not secret:
            raise MissingCredentials("bk_app_secret (or bk_signature) is required")
        if not client.app_secret.matches(secret):
            raise BadAppSecret(f"app secret of {app_code!r} does not match")
        return Caller(client, "secret", username)

    @staticmethod
    def require(caller: Caller, permission: Permission) -> None:
        allowed = caller.client.may_get_token if permission == "get_token" else caller.client.may_refresh_token
        if not allowed:
            raise PermissionDenied(f"app {caller.app_code!r} may not {permission.replace('_', ' ')}")

    def _check_signature(
        self,
        client: ClientConfig,
        params: Mapping[str, Any],
        *,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes,
    ) -> None:
        offered = _text(params, "bk_signature")
        stamp = _text(params, "bk_timestamp")
        nonce = _text(params, "bk_nonce")
        if not (offered and stamp and nonce):
            raise BadSignature("bk_signature needs bk_timestamp and bk_nonce")
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:  # "²" is a digit int() refuses
            raise StaleSignature("bk_timestamp is not unix seconds")
        now = self._clock()
        if abs(now - int(stamp)) > self._window_s:
            raise StaleSignature(f"bk_timestamp outside the {self._window_s} s window")
        _require_one_reading(query, body)
        expected = signature(client.app_secret.reveal(), method, path, query, body)
        if not hmac.compare_digest(expected.encode("ascii"), offered.encode("utf-8", "replace")):
            raise BadSignature("bk_signature does not match")
        self._remember(client.app_code, nonce, now)

    def _remember(self, app_code: str, nonce: str, now: float) -> None:
        while self._nonces:
            oldest, seen_at = next(iter(self._nonces.items()))
            if now - seen_at <= 2 * self._window_s:
                break
            del self._nonces[oldest]
        key = (app_code, nonce[:128])
        if key in self._nonces:
            raise StaleSignature("bk_nonce already used (replay)")
        self._nonces[key] = now


def signature(secret: str, method: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    """BlueKing's ``get_signature``: what a caller computes and what we expect."""
    fields = {k: v for k, v in query.items() if k != "bk_signature"}
    if body:
        fields["data"] = body.decode("utf-8", "replace")
    canonical = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
    message = f"{method.upper()}{path}?{canonical}".encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha1).digest()).decode("ascii")


def _require_one_reading(query: Mapping[str, str], body: bytes) -> None:
    """Refuse a signed query the signature and the handler could read differently.

    ``query`` may be a multidict, whose ``items()`` yield a key once per value (its keys and
    iteration yield it once): the signature would cover the last value while ``read_params``
    hands the handler the first.
    """
    repeated = sorted(key for key, count in Counter(key for key, _ in query.items()).items() if count > 1)
    if repeated:
        raise BadSignature(f"bk_signature cannot cover a repeated parameter: {', '.join(repeated)[:64]}")
    if body and "data" in query:
        raise BadSignature("bk_signature cannot cover a query parameter data beside a body")


def _text(params: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return ""


def _header_params(headers: Mapping[str, str]) -> dict[str, Any]:
    """BlueKing API gateway style: ``X-Bkapi-Authorization: {"bk_app_code": …, "bk_app_secret": …}``."""
    raw = headers.get(AUTH_HEADER)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
        raise MissingCredentials(f"{AUTH_HEADER} is not a JSON object") from None
    if not isinstance(value, dict):
        raise MissingCredentials(f"{AUTH_HEADER} is not a JSON object")
    return {k: v for k, v in value.items() if k in ("bk_app_code", "bk_app_secret", "bk_username")}


__all__ = ["Caller", "CallerAuth", "Permission", "signature"]
