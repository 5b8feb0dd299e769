"""Access tokens as WeChat issues and checks them, including the ways they stop working.

MP classic tokens: every fetch issues a new token and the previous one keeps working only for a
short overlap (5 minutes) — the reason WeChat asks for one central token server. MP stable tokens
are isolated from classic ones: a normal fetch returns the current token until its last 5 minutes;
``force_refresh`` replaces it at once and is limited to one per 30 s and 20 per day. WeCom issues
one token per corpid+secret and returns the same one while it is valid.
"""

from __future__ import annotations

import math
import re
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from devtools.emulator.config import Timing
from devtools.emulator.errors import ApiError

Family = Literal["mp", "wecom"]
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{20,512}")
_BEIJING = 8 * 3600

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40014: "invalid access_token",
    42001: "access_token expired",
}


@dataclass
class IssuedToken:
    value: str
    family: Family
    kind: str
    owner: str
    agentid: int | None
    issued_at: float
    expires_at: float
    invalid_after: float | None = None
    revoked_errcode: int | None = None

    def usable(self, now: float) -> bool:
        return (
            self.revoked_errcode is None
            and now < self.expires_at
            and (self.invalid_after is None or now < self.invalid_after)
        )

    def expires_in(self, now: float) -> int:
        return max(0, math.ceil(self.expires_at - now))


class TokenBook:
    """Every token issued since the last reset, with per-app fetch counts."""

    def __init__(self, timing: Timing, clock: Callable[[], float]) -> None:
        self._timing = timing
        self._clock = clock
        self._by_value: dict[str, IssuedToken] = {}
        self._classic: dict[str, list[IssuedToken]] = defaultdict(list)
        self._stable: dict[str, IssuedToken] = {}
        self._wecom: dict[tuple[str, int], IssuedToken] = {}
        self._forced: dict[str, list[float]] = defaultdict(list)
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def _issue(self, family: Family, kind: str, owner: str, agentid: int | None = None) -> IssuedToken:
        now = self._clock()
        prefix = f"{secrets.randbelow(90) + 10}_" if family == "mp" else ""
        token = IssuedToken(
            value=prefix + secrets.token_urlsafe(108),
            family=family,
            kind=kind,
            owner=owner,
            agentid=agentid,
            issued_at=now,
            expires_at=now + self._timing.token_ttl_s,
        )
        self._by_value[token.value] = token
        count_key = kind if agentid is None else f"{kind}:{agentid}"
        self.counts[owner][count_key] += 1
        return token

    def classic(self, appid: str) -> IssuedToken:
        """``/cgi-bin/token``: a new token; earlier ones die after the overlap."""
        deadline = self._clock() + self._timing.token_overlap_s
        for old in self._classic[appid]:
            if old.invalid_after is None or old.invalid_after > deadline:
                old.invalid_after = deadline
        token = self._issue("mp", "token", appid)
        self._classic[appid].append(token)
        return token

    def stable(self, appid: str, *, force: bool) -> IssuedToken:
        """``/cgi-bin/stable_token``: the current stable token unless forced or nearly expired."""
        now = self._clock()
        current = self._stable.get(appid)
        if force:
            self._spend_force_quota(appid, now)
            if current is not None:
                current.invalid_after = now
        elif current is not None and current.usable(now):
            if now < current.expires_at - self._timing.stable_refresh_margin_s:
                self.counts[appid]["stable_token"] += 1
                return current
        token = self._issue("mp", "stable_token_forced" if force else "stable_token", appid)
        self._stable[appid] = token
        return token

    def _spend_force_quota(self, appid: str, now: float) -> None:
        forced = self._forced[appid]
        if forced and now - forced[-1] < self._timing.stable_force_interval_s:
            raise ApiError(45011, "api minute-quota reach limit  mustslower  retry next minute")
        today = (now + _BEIJING) // 86400
        if sum(1 for t in forced if (t + _BEIJING) // 86400 == today) >= self._timing.stable_force_per_day:
            raise ApiError(45009, "reach max api daily quota limit")
        forced.append(now)

    def wecom(self, corpid: str, agentid: int) -> IssuedToken:
        """``/cgi-bin/gettoken``: the same token while it is valid, a new one after."""
        current = self._wecom.get((corpid, agentid))
        if current is not None and current.usable(self._clock()):
            self.counts[corpid][f"gettoken:{agentid}"] += 1
            return current
        token = self._issue("wecom", "gettoken", corpid, agentid)
        self._wecom[(corpid, agentid)] = token
        return token

    def check(self, value: str | None, family: Family) -> IssuedToken:
        """The token behind an API call, or the errcode WeChat would answer with."""
        if not value:
            raise ApiError(41001, "access_token missing")
        token = self._by_value.get(value)
        if token is None or token.family != family:
            if family == "mp" and _WELL_FORMED.fullmatch(value):
                raise ApiError(40001, ERRMSG[40001])
            raise ApiError(40014, ERRMSG[40014])
        now = self._clock()
        if token.revoked_errcode is not None:
            raise ApiError(token.revoked_errcode, ERRMSG.get(token.revoked_errcode, "access_token revoked"))
        if now >= token.expires_at:
            raise ApiError(42001, ERRMSG[42001])
        if token.invalid_after is not None and now >= token.invalid_after:
            code = 40001 if family == "mp" else 40014
            raise ApiError(code, ERRMSG[code])
        return token

    def revoke(self, errcode: int, owner: str | None = None) -> int:
        """Make every live token (of one app, or all) answer ``errcode`` from now on."""
        revoked = 0
        for token in self._by_value.values():
            if token.revoked_errcode is None and (owner is None or token.owner == owner):
                token.revoked_errcode = errcode
                revoked += 1
        return revoked

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {owner: dict(kinds) for owner, kinds in self.counts.items()}
