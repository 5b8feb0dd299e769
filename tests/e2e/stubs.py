"""Stand-ins and probes for testing what nginx lets through: a recording gateway stub, a raw HTTP
request (no client-side path normalisation) and a concurrent flood for the rate limit.

Fixtures (registered in tests/e2e/conftest.py): ``gateway_stub`` and ``second_gateway_stub``
(recording apps on free loopback ports), ``http`` (an aiohttp ClientSession).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

CALLBACK = "/wechat/main/callback"
CAP = 64 * 1024  # client_max_body_size 64k, the gateway's server.max_body_bytes default


@dataclass(frozen=True)
class Seen:
    """One request as it reached the gateway's side of nginx."""

    method: str
    path_qs: str
    headers: CIMultiDict[str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class GatewayStub:
    """Stands in for the gateway: records every request that gets past nginx, answers "success"."""

    port: int = 0
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        headers = CIMultiDict(request.headers)
        self.seen.append(Seen(request.method, request.raw_path, headers, body, (peer[0], peer[1])))
        await asyncio.sleep(self.delay_s)
        return web.Response(text="success")


async def start_gateway_stub(aiohttp_server: Any) -> GatewayStub:
    """A catch-all stub on a free port, served by pytest-aiohttp's ``aiohttp_server``."""
    stub = GatewayStub()
    app = web.Application(client_max_size=4 * CAP)
    app.router.add_route("*", "/{tail:.*}", stub.handle)
    server = await aiohttp_server(app)
    stub.port = server.port
    return stub


@pytest.fixture
async def gateway_stub(aiohttp_server: Any) -> GatewayStub:
    return await start_gateway_stub(aiohttp_server)


@pytest.fixture
async def second_gateway_stub(aiohttp_server: Any) -> GatewayStub:
    return await start_gateway_stub(aiohttp_server)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def raw_request(port: int, target: str, method: str = "GET") -> int:
    """Send ``target`` verbatim in the request line and return the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def flood(http: aiohttp.ClientSession, url: str, n: int = 60, **headers: str) -> collections.Counter[int]:
    """``n`` concurrent GETs of ``url`` from one client; how many got each status."""

    async def one() -> int:
        async with http.get(url, headers=headers) as resp:
            await resp.read()
            return resp.status

    return collections.Counter(await asyncio.gather(*(one() for _ in range(n))))
