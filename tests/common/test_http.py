"""The request-id middleware both tiers share, driven over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.http import request_id_middleware
from common.logs import request_id


async def _echo_bound_id(request: web.Request) -> web.Response:
    return web.Response(text=request_id.get())


def _app() -> web.Application:
    app = web.Application(middlewares=[request_id_middleware])
    app.router.add_get("/", _echo_bound_id)
    return app


async def test_request_id_middleware_sane_incoming_id_is_bound_and_echoed(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app())
    resp = await client.get("/", headers={"X-Request-Id": "req.0123-abcd_ef"})
    assert (await resp.text(), resp.headers["X-Request-Id"]) == ("req.0123-abcd_ef", "req.0123-abcd_ef")


async def test_request_id_middleware_insane_incoming_id_is_replaced(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app())
    resp = await client.get("/", headers={"X-Request-Id": "short"})
    bound = await resp.text()
    assert bound != "short" and len(bound) == 32 and resp.headers["X-Request-Id"] == bound


async def test_request_id_middleware_aiohttp_404_carries_the_id(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_app())
    resp = await client.get("/nowhere", headers={"X-Request-Id": "0123456789abcdef"})
    assert (resp.status, resp.headers["X-Request-Id"]) == (404, "0123456789abcdef")

