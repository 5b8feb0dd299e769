"""Every listener caps what it buffers, before anything authenticates the request.

The gateway's public listener: ``server.max_body_bytes`` (64 KiB by default; nginx caps it at
64k first, tests/e2e/test_nginx.py). Here: the gateway's pull listener (1 MiB) and the
sidecar's listener (``server.max_body_bytes``, 1 MiB by default) for the relay endpoint, the
send API and the binding-link API. An oversized body is refused and has no effect: no event in
the inbox, no call to WeChat, no link. The relay answers 413; the BlueKing-compatible endpoints
answer as BlueKing does, always HTTP 200, with ``result: false`` and a message naming the cap.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

import contract
from contract import dump_json
from gateway.app import create_app as gateway_app
from gateway.config import load_config as load_gateway
from gateway.keys import RELAY
from tests.gateway.conftest import ACCOUNTS
from tests.gateway.helpers import write_config as write_gateway_config
from tests.sidecar.esb.conftest import AUTH, Rig, make_rig, rig
from tests.sidecar.helpers import RELAY_SECRET
from tests.sidecar.relayhelp import event, signed

__all__ = ["make_rig", "rig"]  # the BlueKing API suite's rig, as fixtures of this module

AppClient = TestClient[web.Request, web.Application]
OVER = 1024 * 1024 + 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/relay/v1/events", None),
        ("/api/c/compapi/cmsi/send_weixin/", {"receiver": "o" * OVER, "data": {"heading": "h", "message": "m"}}),
        ("/api/v1/binding-links", {"username": "alice", "padding": "x" * OVER}),
        ("/api/c/compapi/weixin/get_token/", {"padding": "x" * OVER}),
    ],
)
async def test_sidecar_oversized_body_is_refused_without_effect(
    rig: Rig, path: str, body: dict[str, Any] | None
) -> None:
    if body is None:  # a relay batch, correctly signed, just too big
        payload, headers = signed({"events": [event(openid="o" * OVER)]})
    else:
        payload, headers = dump_json({**AUTH, **body}), {"Content-Type": "application/json"}
    response = await rig.client.post(path, data=io.BytesIO(payload), headers=headers)
    if body is None:
        assert response.status == 413
    else:
        assert response.status == 200
        answer = await response.json()
        assert answer["result"] is False
        assert "larger than" in answer["message"]
    assert rig.wechat.calls == []
    assert await rig.audit() == []


async def test_gateway_pull_listener_oversized_body_is_413_before_authentication(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]], tmp_path: Path
) -> None:
    relay = f'[relay]\nmode = "pull"\npull_listen = "127.0.0.1:0"\nsecrets = ["{RELAY_SECRET}"]\n'
    gateway = await aiohttp_client(gateway_app(load_gateway(write_gateway_config(tmp_path, ACCOUNTS, relay=relay))))
    host, port = gateway.app[RELAY].listen_address  # type: ignore[attr-defined]
    body = b'{"max": 1, "wait": 0, "padding": "' + b"x" * OVER + b'"}'
    async with gateway.session.post(f"http://{host}:{port}{contract.LEASE_PATH}", data=io.BytesIO(body)) as response:
        assert response.status == 413
