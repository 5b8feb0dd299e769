"""What a compromised DMZ host can do with what it holds (callback Tokens, EncodingAESKeys, the
relay secrets) at the sidecar, assuming it can reach the sidecar's port at all.

It can sign relay requests, so it can forge events (docs/SECURITY.md says what that allows).
It cannot turn the relay secret into anything else: not a browser session on the binding
console, not a caller of the send or token API.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from contract import RelaySigner, dump_json
from sidecar.binding.cookies import COOKIE_NAME, SessionCookies
from tests.sidecar.binding.conftest import Rig, make_rig, rig
from tests.sidecar.helpers import RELAY_SECRET

__all__ = ["make_rig", "rig"]  # the binding suite's rig, as fixtures of this module

SEND = "/api/c/compapi/cmsi/send_weixin/"
GET_TOKEN = "/api/c/compapi/weixin/get_token/"


def session_signed_with_the_relay_secret(username: str, account: str = "main") -> str:
    return SessionCookies([RELAY_SECRET], ttl_s=3600, secure=False).issue(username, account)


async def test_relay_secret_cannot_sign_a_binding_session(rig: Rig) -> None:
    await rig.store.bindings.bind("main", "bob", "oBob0001", now=rig.clock())
    rig.client.session.cookie_jar.update_cookies({COOKIE_NAME: session_signed_with_the_relay_secret("bob")})

    status, _ = await rig.console("get_bind_status/")
    assert status == 401
    status, _ = await rig.console("mp/get_qrcode/")
    assert status == 401
    status, _ = await rig.unbind()
    assert status == 401
    assert (await rig.store.bindings.get("main", "bob")) is not None


async def test_relay_secret_is_no_caller_credential(rig: Rig) -> None:
    client: TestClient[web.Request, web.Application] = rig.client
    as_secret: dict[str, Any] = {"bk_app_code": "bk_paas", "bk_app_secret": RELAY_SECRET}
    body = dump_json({"receiver": "oBob0001", "data": {"heading": "h", "message": "m"}})
    relay_signed = RelaySigner([RELAY_SECRET], clock=rig.clock).headers(body)
    answers = [
        await (await client.post(SEND, json={**as_secret, "receiver": "o1", "data": {"heading": "h", "message": "m"}}))
        .json(),
        await (await client.get(GET_TOKEN, params=as_secret)).json(),
        await (await client.post(SEND, data=body, headers=relay_signed)).json(),
    ]
    assert [a["result"] for a in answers] == [False, False, False]
    assert [a["code"] for a in answers] == [1306403, 1306403, 1306401]
    assert rig.wechat.calls == []
