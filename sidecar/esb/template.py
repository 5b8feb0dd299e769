"""MP template messages: the ``data`` mapping, WeChat's 2023 field rules, and ``client_msg_id``.

Mapping. The account's ``template_fields`` (sidecar.config) says which BlueKing field fills which
template key; a field with no value (no ``remark`` given) is left out. ``date`` defaults to the
send time, ``YYYY-mm-dd HH:MM`` (BlueKing's documented default).

Field rules (since 2023-05-04). WeChat shows no line breaks and truncates each field by the
type its key names — ``thing1`` is a ``thing``: 20 characters; ``character_string`` 32;
``phone_number`` 17; ``car_number`` 8; ``const`` 20 (and ``number``/``letter`` 32,
``symbol``/``phrase`` 5). We apply the same rules before sending, so
what we log and audit is what people see, and we log every cut. A cut ``thing`` ends in ``…``;
other types are cut plainly (their values allow only certain characters).

client_msg_id. WeChat drops a second template message with the same ``(openid, client_msg_id)``
within 10 minutes. We derive the id from the request, never from randomness, so a repeat of the
same send carries the same id:

    sha256(["v1", app_id, template_id, openid, url, heading, message, date, remark, salt])[:32]

where the date is the caller's (not the defaulted send time, which differs on a retry) and
``salt`` is ``key:<idempotency key>`` when the caller gives one (``idempotency_key`` parameter or
``Idempotency-Key`` header: same key, same send), else ``t:<window start>``: the 10-minute window
in which this process first saw this content (kept for 10 minutes), or the current 10-minute
window. So a BlueKing retry of a call — same content, seconds or minutes later — is delivered
once; the same alert an hour later is a new message. Replicas that do not share the memory still
agree within a window. Request ids are not used: a BlueKing-level retry is a new request with a
new id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.config import MpAccount
from sidecar.esb.message import Message

log = logging.getLogger(__name__)

TYPE_LIMITS: dict[str, int] = {
    "thing": 20,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "const": 20,
    # WeChat's limits for these types (from its subscription-message rules, which templates share)
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phrase": 5,
}
ELLIPSIS_TYPES = frozenset({"thing"})
DEDUPE_WINDOW_S = 600  # WeChat's client_msg_id window
_LINE_BREAKS = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")
_KEY_TYPE = re.compile(r"^(.*?)\d*$")


@dataclass(frozen=True)
class Cut:
    """A field value shortened to WeChat's limit (for the log line)."""

    key: str
    kind: str
    before: int
    after: int


def key_type(key: str) -> str:
    """The WeChat field type a template key names: ``thing1`` → ``thing``."""
    match = _KEY_TYPE.match(key)
    return match.group(1) if match else key


def clean_value(key: str, value: str) -> tuple[str, Cut | None]:
    """One line, cut to the key type's limit."""
    one_line = _LINE_BREAKS.sub(" ", value).strip()
    kind = key_type(key)
    limit = TYPE_LIMITS.get(kind)
    if limit is None or len(one_line) <= limit:
        return one_line, None
    cut = one_line[: limit - 1] + "…" if kind in ELLIPSIS_TYPES else one_line[:limit]
    return cut, Cut(key, kind, len(one_line), len(cut))


def template_data(account: MpAccount, message: Message, sent_at: str) -> tuple[dict[str, dict[str, str]], list[Cut]]:
    """WeChat's ``data`` object for this account's mapping, and the cuts made."""
    values = {**message.as_dict(), "date": message.date or sent_at}
    data: dict[str, dict[str, str]] = {}
    cuts: list[Cut] = []
    for key, source in account.template_fields:
        value = values.get(source, "")
        if not value:
            continue
        cleaned, cut = clean_value(key, value)
        data[key] = {"value": cleaned}
        if cut is not None:
            cuts.append(cut)
    return data, cuts


def log_cuts(account: str, cuts: list[Cut]) -> None:
    for cut in cuts:
        log.info(
            "template field truncated to WeChat's limit",
            extra={"account": account, "key": cut.key, "type": cut.kind, "chars": cut.before, "kept": cut.after},
        )


def client_msg_id(account: MpAccount, openid: str, url: str, message: Message, salt: str) -> str:
    """See the module docstring; 32 hex characters."""
    fields = ["v1", account.app_id, account.template_id, openid, url, *message.as_dict().values(), salt]
    canonical = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def content_fingerprint(account: MpAccount, url: str, message: Message) -> str:
    fields = [account.app_id, account.template_id, url, *message.as_dict().values()]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


class RecentSends:
    """Content fingerprint → the dedupe window it was first seen in, for ``window_s`` seconds.

    Per app (under an AppKey), bounded: the oldest entries go first when full.
    """

    def __init__(
        self, *, window_s: int = DEDUPE_WINDOW_S, max_entries: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._window_s = window_s
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __repr__(self) -> str:
        return f"RecentSends(entries={len(self._seen)})"

    def salt(self, fingerprint: str, idempotency_key: str = "") -> str:
        if idempotency_key:
            return "key:" + idempotency_key
        return f"t:{self._window(fingerprint)}"

    def _window(self, fingerprint: str) -> int:
        now = self._clock()
        while self._seen:
            oldest, (seen_at, _) = next(iter(self._seen.items()))
            if now - seen_at < self._window_s and len(self._seen) < self._max:
                break
            del self._seen[oldest]
        known = self._seen.get(fingerprint)
        if known is not None:
            return known[1]
        window = int(now // self._window_s) * self._window_s
        self._seen[fingerprint] = (now, window)
        return window


def sent_at(clock: Callable[[], float]) -> str:
    """The default ``date``: the send time, local, ``YYYY-mm-dd HH:MM``."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(clock()))


__all__ = [
    "TYPE_LIMITS",
    "Cut",
    "RecentSends",
    "clean_value",
    "client_msg_id",
    "content_fingerprint",
    "key_type",
    "log_cuts",
    "sent_at",
    "template_data",
]
