"""Fault injection: the next N calls of an endpoint fail the way WeChat fails.

Kinds: ``errcode`` (answer ``{"errcode": -1|45009|…}`` instead of serving the call), ``latency``
(serve it, late) and ``drop`` (close the socket without answering). Latency rules combine with
the others; among ``errcode`` and ``drop`` rules the oldest matching one wins.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aiohttp import web

from devtools.emulator.errors import AdminError, ApiError
from devtools.emulator.jsonwire import wechat_json

FaultKind = Literal["errcode", "latency", "drop"]
KINDS: tuple[FaultKind, ...] = ("errcode", "latency", "drop")
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
}


@dataclass
class Fault:
    id: int
    path: str
    kind: FaultKind
    times: int | None
    errcode: int = -1
    errmsg: str = ""
    latency_s: float = 0.0
    hits: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """The active fault rules; a rule with ``times`` left at 0 is removed."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        """Validate an admin request body and add the rule it describes."""
        path, kind, times = spec.get("path", "*"), spec.get("kind"), spec.get("times", 1)
        if not isinstance(path, str) or not (path == "*" or path.startswith("/")):
            raise AdminError('"path" must be an endpoint path such as /cgi-bin/token, or "*"')
        if path.startswith("/_emu"):
            raise AdminError("faults apply to WeChat endpoints, not to the admin API")
        if kind not in KINDS:
            raise AdminError(f'"kind" must be one of {", ".join(KINDS)}')
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise AdminError('"times" must be a positive integer, or null for "until cleared"')
        errcode = spec.get("errcode", -1)
        if isinstance(errcode, bool) or not isinstance(errcode, int):
            raise AdminError('"errcode" must be an integer')
        latency = spec.get("latency_s", 0.0)
        if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
            raise AdminError('"latency_s" must be a non-negative number')
        if kind == "latency" and not latency:
            raise AdminError('a latency fault needs "latency_s"')
        errmsg = spec.get("errmsg") or ERRMSG.get(errcode, "system error")
        if not isinstance(errmsg, str):
            raise AdminError('"errmsg" must be a string')
        fault = Fault(next(self._ids), path, kind, times, errcode, errmsg, float(latency))
        self._rules.append(fault)
        return fault

    def clear(self) -> int:
        cleared = len(self._rules)
        self._rules.clear()
        return cleared

    def active(self) -> list[Fault]:
        return list(self._rules)

    def take(self, path: str) -> list[Fault]:
        """Consume one use of every latency rule and of the first failing rule matching ``path``."""
        taken: list[Fault] = []
        failing_taken = False
        for rule in self._rules:
            if rule.path not in ("*", path):
                continue
            if rule.kind != "latency":
                if failing_taken:
                    continue
                failing_taken = True
            taken.append(rule)
            rule.hits += 1
            if rule.times is not None:
                rule.times -= 1
        self._rules = [r for r in self._rules if r.times is None or r.times > 0]
        return taken


async def apply_faults(request: web.Request, rules: list[Fault]) -> web.StreamResponse | None:
    """Sleep for latency rules, then fail as the failing rule says; None lets the call through."""
    for rule in rules:
        if rule.kind == "latency":
            await asyncio.sleep(rule.latency_s)
    for rule in rules:
        if rule.kind == "errcode":
            return wechat_json(ApiError(rule.errcode, rule.errmsg).body())
        if rule.kind == "drop":
            if request.transport is not None:
                request.transport.close()
            # aiohttp notices the closed transport when writing this and ends the request quietly
            return web.Response(status=502)
    return None
