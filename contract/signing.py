"""Standard Webhooks v1 signing of relay requests, in both directions.

The HMAC itself comes from the ``standardwebhooks`` package; this module adds what the contract
asks on top of it: several secrets (rotation), an injectable clock, replay protection on
``webhook-id`` and errors that never leak a ``ValueError`` from a malformed header.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets as _random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from contract.errors import SignatureError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
MIN_SECRET_BYTES = 24
WINDOW_S = 300
MAX_ID_CHARS = 128


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a usable ``whsec_`` secret, or None when it is."""
    if not secret.startswith(SECRET_PREFIX):
        return "relay secret must start with whsec_"
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return "relay secret is not valid base64 after whsec_"
    if len(raw) < MIN_SECRET_BYTES:
        return f"relay secret must hold at least {MIN_SECRET_BYTES} random bytes"
    return None


def generate_secret() -> str:
    """A fresh ``whsec_`` secret with 32 bytes from the OS CSPRNG."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def _webhooks(secrets: Sequence[str]) -> list[Webhook]:
    if not secrets:
        raise ValueError("at least one relay secret is required")
    for secret in secrets:
        problem = secret_problem(secret)
        if problem:
            raise ValueError(problem)
    return [Webhook(secret) for secret in secrets]


class RelaySigner:
    """Adds the three webhook-* headers; signs with every configured secret during rotation."""

    def __init__(self, secrets: Sequence[str], *, clock: Callable[[], float] = time.time) -> None:
        self._hooks = _webhooks(secrets)
        self._clock = clock

    def __repr__(self) -> str:
        return f"RelaySigner(<{len(self._hooks)} secrets>)"

    def headers(self, body: bytes) -> dict[str, str]:
        msg_id = "msg_" + _random.token_hex(16)
        moment = datetime.fromtimestamp(int(self._clock()), tz=UTC)
        data = body.decode("utf-8")
        signatures = " ".join(hook.sign(msg_id, moment, data) for hook in self._hooks)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signatures,
            "content-type": "application/json",
        }


class RelayVerifier:
    """Checks a relay request: fresh timestamp, matching signature, webhook-id not seen before.

    Seen ids are remembered for twice the window, in this process only: a replica that did not
    see the first request would accept a replay inside the window (documented in SECURITY.md).
    """

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        window_s: int = WINDOW_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._hooks = _webhooks(secrets)
        self._window_s = window_s
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"RelayVerifier(<{len(self._hooks)} secrets>, window_s={self._window_s})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Return normally if the request is authentic and new; raise SignatureError otherwise."""
        lowered = {k.lower(): v for k, v in headers.items()}
        msg_id = lowered.get("webhook-id", "")
        stamp = lowered.get("webhook-timestamp", "")
        passed = lowered.get("webhook-signature", "")
        if not (msg_id and stamp and passed):
            raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
        if len(msg_id) > MAX_ID_CHARS:
            raise SignatureError("webhook-id too long")
        now = self._clock()
        moment = self._check_timestamp(stamp, now)
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("body is not UTF-8") from None
        offered = _offered_signatures(passed)
        for hook in self._hooks:
            expected = base64.b64decode(hook.sign(msg_id, moment, data).split(",", 1)[1])
            if any(hmac.compare_digest(expected, sig) for sig in offered):
                self._remember(msg_id, now)
                return
        raise SignatureError("no matching signature")

    def _check_timestamp(self, stamp: str, now: float) -> datetime:
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:  # "²" is a digit int() refuses
            raise SignatureError("webhook-timestamp is not unix seconds")
        seconds = int(stamp)
        if abs(now - seconds) > self._window_s:
            raise SignatureError(f"webhook-timestamp outside the {self._window_s} s window")
        return datetime.fromtimestamp(seconds, tz=UTC)

    def _remember(self, msg_id: str, now: float) -> None:
        while self._seen:
            oldest_id, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= 2 * self._window_s:
                break
            del self._seen[oldest_id]
        if msg_id in self._seen:
            raise SignatureError("webhook-id already used (replay)")
        self._seen[msg_id] = now


def _offered_signatures(header: str) -> list[bytes]:
    """The v1 signatures in a space-separated header; malformed entries are skipped."""
    offered: list[bytes] = []
    for item in header.split(" ")[:8]:
        version, _, encoded = item.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            offered.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return offered
