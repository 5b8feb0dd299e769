"""A scriptable WeChat stand-in on aioresponses, for every sidecar suite.

It behaves like the real APIs by default (token endpoints issue fresh tokens; calls with an
unknown token get 40001; sends succeed with a msgid) and lets a test queue specific answers or
exceptions per API. Every request is recorded with its query and JSON body, so tests can
assert what WeChat would have received.

    with aioresponses(passthrough=[str(client.make_url("/"))]) as mocked:
        wechat = FakeWeChat(mocked)
        wechat.queue("template_send", {"errcode": 45009, "errmsg": "api freq out of limit"})
        ...
        assert wechat.count("mp_stable_token") == 1
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aioresponses import CallbackResult, aioresponses
from yarl import URL

MP_BASE = "http://127.0.0.1:9/mp"
WECOM_BASE = "http://127.0.0.1:9/wecom"

# api name -> (method, base, path)
ROUTES: dict[str, tuple[str, str, str]] = {
    "mp_token": ("GET", MP_BASE, "/cgi-bin/token"),
    "mp_stable_token": ("POST", MP_BASE, "/cgi-bin/stable_token"),
    "template_send": ("POST", MP_BASE, "/cgi-bin/message/template/send"),
    "qrcode_create": ("POST", MP_BASE, "/cgi-bin/qrcode/create"),
    "custom_send": ("POST", MP_BASE, "/cgi-bin/message/custom/send"),
    "wecom_gettoken": ("GET", WECOM_BASE, "/cgi-bin/gettoken"),
    "wecom_message_send": ("POST", WECOM_BASE, "/cgi-bin/message/send"),
    "wecom_getuserinfo": ("GET", WECOM_BASE, "/cgi-bin/auth/getuserinfo"),
}
TOKEN_APIS = frozenset({"mp_token", "mp_stable_token", "wecom_gettoken"})


@dataclass
class Call:
    api: str
    query: dict[str, str]
    body: dict[str, Any] | None

    @property
    def token(self) -> str | None:
        return self.query.get("access_token")


@dataclass
class FakeWeChat:
    mocked: aioresponses
    token_delay_s: float = 0.0  # widen race windows: every token fetch takes this long
    expires_in: int = 7200
    calls: list[Call] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    _queued: dict[str, list[dict[str, Any] | BaseException]] = field(default_factory=dict)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for api, (method, base, path) in ROUTES.items():
            pattern = re.compile("^" + re.escape(base + path) + r"(\?.*)?$")
            self.mocked.add(pattern, method, callback=self._callback(api), repeat=True)

    def queue(self, api: str, *answers: dict[str, Any] | BaseException) -> None:
        """The next calls to ``api`` get these answers (an exception is raised by the client)."""
        self._queued.setdefault(api, []).extend(answers)

    def count(self, api: str) -> int:
        return sum(1 for c in self.calls if c.api == api)

    def of(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    def token_fetches(self) -> int:
        return sum(1 for c in self.calls if c.api in TOKEN_APIS)

    def _callback(self, api: str) -> Any:
        async def answer(url: URL, **kwargs: Any) -> CallbackResult:
            raw = kwargs.get("data")
            body = json.loads(raw) if raw else None
            self.calls.append(Call(api, dict(url.query), body))
            if api in TOKEN_APIS and self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            queued = self._queued.get(api)
            if queued:
                item = queued.pop(0)
                if isinstance(item, BaseException):
                    raise item
                if api in TOKEN_APIS and "access_token" in item:
                    self.valid_tokens.add(item["access_token"])
                return CallbackResult(payload=item)
            return CallbackResult(payload=self._default(api, dict(url.query), body))

        return answer

    def _default(self, api: str, query: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
        if api in TOKEN_APIS:
            token = f"TOKEN-{api}-{next(self._serial)}"
            self.valid_tokens.add(token)
            return {"access_token": token, "expires_in": self.expires_in}
        if query.get("access_token") not in self.valid_tokens:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if api == "template_send":
            return {"errcode": 0, "errmsg": "ok", "msgid": 1000 + next(self._serial)}
        if api == "qrcode_create":
            scene = (body or {}).get("action_info", {}).get("scene", {}).get("scene_str", "")
            return {"ticket": f"TICKET-{scene}", "expire_seconds": 600, "url": f"http://weixin.qq.com/q/{scene}"}
        if api == "wecom_message_send":
            return {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"wecom-{next(self._serial)}"}
        if api == "wecom_getuserinfo":
            return {"errcode": 0, "errmsg": "ok", "userid": "zhangsan"}
        return {"errcode": 0, "errmsg": "ok"}
