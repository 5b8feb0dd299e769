"""The gateway opens no connection except to its relay target, whatever WeChat (or anyone) sends.

Recorded at the socket (tests/security/egress.py), over a workload of every kind of callback,
verification, refusal and operational request, with the real app (SQLite spool, relay):

* push mode — every connection the gateway makes goes to ``push_url``'s host and port;
* pull mode — the gateway makes no connection at all; the sidecar comes to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import contract
from gateway.app import create_app
from gateway.config import load_config
from gateway.keys import RELAY
from tests.gateway.conftest import (
    ACCOUNTS,
    CORP_ID,
    CORP_KEY,
    CORP_TOKEN,
    MP_APP_ID,
    MP_KEY,
    MP_TOKEN,
    NOW,
    PLAIN_TOKEN,
    FakeClock,
)
from tests.gateway.helpers import BILLION_LAUGHS, CallbackBuilder, text_message, write_config
from tests.security.egress import Connections

SECRET = contract.generate_secret()
AppClient = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[AppClient]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]

MP = CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=NOW)
PLAIN = CallbackBuilder(PLAIN_TOKEN, None, "wxplain0000000000", now=NOW)
WECOM = CallbackBuilder(CORP_TOKEN, CORP_KEY, CORP_ID, now=NOW)


class Sidecar:
    """Accepts signed pushes and acknowledges every event with a reply."""

    def __init__(self, clock: FakeClock) -> None:
        self.verifier = contract.RelayVerifier([SECRET], clock=clock)
        self.received: list[contract.Envelope] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(contract.PUSH_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.verifier.verify(body, request.headers)
        events = contract.parse_events(contract.load_json(body))
        self.received.extend(events)
        reply = contract.text_reply("ok")
        return web.json_response({"results": [{"id": e["id"], "status": "accepted", "reply": reply} for e in events]})


async def every_kind_of_request(gateway: AppClient) -> int:
    """Verifications, callbacks in each mode, refusals and the operational endpoints.

    Returns how many events the gateway should relay.
    """
    await gateway.get("/wechat/main/callback", params=MP.mp_verify())
    await gateway.get("/wechat/corp/callback", params=WECOM.wecom_verify())
    accepted = [
        ("/wechat/main/callback", MP.mp_safe(text_message("safe"))),
        ("/wechat/main/callback", MP.mp_compat(text_message("compat"))),
        ("/wechat/plain/callback", PLAIN.mp_plain(text_message("plain"))),
        ("/wechat/corp/callback", WECOM.wecom_post(text_message("wecom", to_user=CORP_ID))),
        ("/console/user_center/weixin/mp/callback/", MP.mp_safe(text_message("legacy path"))),
    ]
    for url, (query, body) in accepted:
        response = await gateway.post(url, params=query, data=body)
        assert response.status == 200, await response.text()
    query, body = MP.mp_safe(text_message("forged"))
    refused = [
        ("/wechat/main/callback", dict(query, msg_signature="0" * 40), body),
        ("/wechat/plain/callback", PLAIN.mp_plain(text_message())[0], BILLION_LAUGHS.encode()),
        ("/wechat/main/callback", query, b"<xml>" + b"A" * 200_000 + b"</xml>"),
        ("/wechat/nobody/callback", query, body),
    ]
    for url, params, data in refused:
        assert (await gateway.post(url, params=params, data=data)).status in (400, 403, 404, 413)
    for path in ("/healthz", "/readyz", "/metrics"):
        await gateway.get(path)
    return len(accepted)


async def test_gateway_in_push_mode_connects_only_to_push_url(
    aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, tmp_path: Path, connections: Connections
) -> None:
    clock = FakeClock()
    sidecar = Sidecar(clock)
    server = await aiohttp_server(sidecar.app())
    relay = f'[relay]\nmode = "push"\npush_url = "{server.make_url(contract.PUSH_PATH)}"\nsecrets = ["{SECRET}"]\n'
    gateway = await aiohttp_client(create_app(load_config(write_config(tmp_path, ACCOUNTS, relay=relay)), clock=clock))

    relayed = await every_kind_of_request(gateway)
    async with asyncio.timeout(5):
        while len(sidecar.received) < relayed:
            await asyncio.sleep(0.01)

    ours = {(str(gateway.server.host), int(gateway.port))}
    assert connections.to(excluding=ours) == {(str(server.host), int(server.port))}


async def test_gateway_in_pull_mode_opens_no_connection(
    aiohttp_client: ClientFactory, tmp_path: Path, connections: Connections
) -> None:
    clock = FakeClock()
    relay = f'[relay]\nmode = "pull"\npull_listen = "127.0.0.1:0"\nsecrets = ["{SECRET}"]\n'
    gateway = await aiohttp_client(create_app(load_config(write_config(tmp_path, ACCOUNTS, relay=relay)), clock=clock))
    host, port = gateway.app[RELAY].listen_address  # type: ignore[attr-defined]
    signer = contract.RelaySigner([SECRET], clock=clock)

    relayed = await every_kind_of_request(gateway)
    leased: list[contract.Envelope] = []
    async with aiohttp.ClientSession() as sidecar:
        while len(leased) < relayed:
            lease = contract.dump_json({"max": 100, "wait": 1})
            async with sidecar.post(
                f"http://{host}:{port}{contract.LEASE_PATH}", data=lease, headers=signer.headers(lease)
            ) as response:
                leased.extend(contract.parse_events(await response.json()))
        results = [{"id": e["id"], "status": "accepted", "reply": None} for e in leased]
        ack = contract.dump_json({"results": results})
        async with sidecar.post(
            f"http://{host}:{port}{contract.ACK_PATH}", data=ack, headers=signer.headers(ack)
        ) as response:
            assert response.status == 200

    ours = {(str(gateway.server.host), int(gateway.port)), (host, port)}
    assert connections.to(excluding=ours) == set()
