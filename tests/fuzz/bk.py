"""Calling the sidecar's BlueKing send API with anything, and judging the envelope it answers.

BlueKing's callers expect HTTP 200 and ``{"result", "code", "message", "data", "request_id"}``
whatever happened; a 5xx or a bare error page breaks them. WeChat is aioresponses (FakeWeChat),
which answers every send like the real API and records what it was sent.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.fuzz.support import is_clear_reason
from tests.sidecar.fakewechat import FakeWeChat
from tests.sidecar.helpers import CLIENT_SECRET

COMPONENTS = ("send_weixin", "send_msg", "send_mp_weixin", "send_qy_weixin")
AUTH = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}
ENVELOPE_KEYS = {"result", "code", "message", "data", "request_id"}
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
OK, FAILED = 0, 1306000


def path(component: str, v2: bool = False) -> str:
    return f"/api/c/compapi/{'v2/' if v2 else ''}cmsi/{component}/"


def assert_envelope(status: int, text: str) -> dict[str, Any]:
    """HTTP 200 and BlueKing's envelope: typed fields, ``result`` iff code 0, a one-line message.

    The message has no length bound: BlueKing's wording names every unknown username, so it
    grows with the request (the 1 MiB body limit is what caps it)."""
    assert status == 200, f"HTTP {status}: {text[:300]!r}"
    envelope = json.loads(text)
    assert isinstance(envelope, dict) and set(envelope) == ENVELOPE_KEYS, text[:300]
    assert isinstance(envelope["result"], bool)
    assert isinstance(envelope["code"], int) and not isinstance(envelope["code"], bool)
    assert envelope["result"] == (envelope["code"] == OK), text[:300]
    message = envelope["message"]
    assert isinstance(message, str) and message.strip(), text[:300]
    assert "\n" not in message and "Traceback" not in message, message[:400]
    assert isinstance(envelope["request_id"], str) and REQUEST_ID.match(envelope["request_id"])
    return envelope


class BlueKing:
    """A BlueKing caller of the sidecar under test; ``wechat`` is what WeChat was sent."""

    def __init__(self, client: TestClient[web.Request, web.Application], wechat: FakeWeChat) -> None:
        self.client = client
        self.wechat = wechat

    def __repr__(self) -> str:  # hypothesis prints the fixtures of a failing example: keep it short
        return f"BlueKing(<sidecar>, wechat calls={len(self.wechat.calls)})"

    async def call(
        self,
        component: str,
        *,
        method: str = "POST",
        query: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        v2: bool = False,
        protocol_refusal: bool = False,
    ) -> dict[str, Any]:
        """The envelope; with ``protocol_refusal``, aiohttp's own one-line 400 is accepted too
        (a body its HTTP parser cannot decode never reaches the handler)."""
        data = io.BytesIO(body) if body is not None else None
        async with self.client.request(method, path(component, v2), params=query, data=data,
                                       headers=headers) as response:
            text = await response.text()
            if response.status == 400 and protocol_refusal:  # aiohttp's parser, before any handler
                assert is_clear_reason(text), text[:300]
                return {}
            return assert_envelope(response.status, text)

    async def json(self, component: str, params: Any, *, auth: bool = True, **kwargs: Any) -> dict[str, Any]:
        """POST ``params`` as JSON (credentials added when ``params`` is an object and ``auth``)."""
        if auth and isinstance(params, dict):
            params = {**AUTH, **params}
        body = json.dumps(params, ensure_ascii=True).encode("ascii")  # \\u escapes keep lone surrogates
        return await self.call(component, body=body, headers={"Content-Type": "application/json"}, **kwargs)
