"""Small HTTP servers the security suites point the tiers at: a recorder and a redirector.

``Recorder`` stands where nothing should ever connect (an intranet service an attacker would
like to reach, a host a secret must never travel to) and remembers every request it got.
``redirector`` answers every request with a redirect to a URL, as a compromised or spoofed
upstream would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass(frozen=True)
class Seen:
    method: str
    path_qs: str
    body: bytes


@dataclass
class Recorder:
    """Records every request, answers 200 with an empty JSON object."""

    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        return app

    async def _record(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path_qs, await request.read()))
        return web.json_response({})

    def saw(self, text: str) -> bool:
        """Whether ``text`` reached this server in any path, query or body."""
        return any(text in s.path_qs or text.encode() in s.body for s in self.seen)


def redirector(location: str, status: int) -> web.Application:
    """An app whose every route redirects to ``location`` with ``status`` (301, 302, 303, 307, 308)."""

    async def redirect(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers={"Location": location})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app


@pytest.fixture
async def recorder(aiohttp_server: ServerFactory) -> AsyncIterator[Recorder]:
    found = Recorder()
    server = await aiohttp_server(found.app())
    found.url = str(server.make_url("/")).rstrip("/")
    yield found


REDIRECTS = (301, 302, 303, 307, 308)
