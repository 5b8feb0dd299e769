"""The emulator's app factory and in-process runner.

``create_app(config)`` is synchronous and side-effect free; the HTTP client session the pusher
uses and the background task set are cleanup contexts. ``run_emulator(config)`` starts a real
server on a loopback port for tests and the demo::

    async with run_emulator(config) as emu:
        emu.base_url            # http://127.0.0.1:<port>; mp_api = wecom_api = this
        emu.world.records       # what the emulator observed
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from devtools.emulator import admin, login, mp_api, people, wecom_api
from devtools.emulator.config import EmulatorConfig
from devtools.emulator.errors import AdminError, ApiError
from devtools.emulator.faults import apply_faults
from devtools.emulator.jsonwire import wechat_json
from devtools.emulator.keys import BACKGROUND, CALLER, PUSHER, WORLD, Background
from devtools.emulator.pusher import Pusher
from devtools.emulator.records import Call
from devtools.emulator.state import Clock, World

log = logging.getLogger("devtools.emulator")
ADMIN_PREFIX = "/_emu/"


def _record_call(request: web.Request, status: int, errcode: int | None, fault: str = "") -> None:
    world = request.app[WORLD]
    call = Call(
        seq=world.records.next_seq(),
        at=world.clock(),
        method=request.method,
        path=request.path,
        app=request.get(CALLER, ""),
        errcode=errcode,
        http_status=status,
        fault=fault,
    )
    world.records.calls.append(call)


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Faults first, then the handler; errors mapped to HTTP here and nowhere else; calls logged."""
    if request.path.startswith(ADMIN_PREFIX):
        try:
            return await handler(request)
        except AdminError as exc:
            log.info("admin request refused: %s", exc.message, extra={"path": request.path})
            return admin.reply({"error": exc.message}, status=exc.status)
    rules = request.app[WORLD].faults.take(request.path)
    if rules:
        early = await apply_faults(request, rules)
        kinds = ",".join(r.kind for r in rules)
        if early is not None:
            _record_call(request, early.status, next((r.errcode for r in rules if r.kind == "errcode"), None), kinds)
            return early
    try:
        response = await handler(request)
    except ApiError as exc:
        caller = request.get(CALLER, "")
        log.info("%s answered errcode %s: %s", request.path, exc.errcode, exc.errmsg, extra={"caller": caller})
        _record_call(request, 200, exc.errcode, ",".join(r.kind for r in rules))
        return wechat_json(exc.body())
    except web.HTTPException as exc:
        _record_call(request, exc.status, None, ",".join(r.kind for r in rules))
        raise
    errcode = 0 if response.content_type == "application/json" else None
    _record_call(request, response.status, errcode, ",".join(r.kind for r in rules))
    return response


async def _callback_tls(config: EmulatorConfig) -> ssl.SSLContext | bool:
    """How pushes check an https callback URL's certificate (a test CA, or not at all)."""
    if not config.callback_tls_verify:
        return False
    if config.callback_ca_file:
        return await asyncio.to_thread(ssl.create_default_context, cafile=config.callback_ca_file)
    return True


async def _http_session(app: web.Application) -> AsyncIterator[None]:
    """The pusher's client session (WeChat's servers calling the callback URLs)."""
    # No pool limit: WeChat pushes every callback at once; a capped pool would count the wait
    # for a free connection against the 5 s deadline (seen with >100 callbacks in flight).
    connector = aiohttp.TCPConnector(ssl=await _callback_tls(app[WORLD].config), limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        app[PUSHER] = Pusher(app[WORLD], session)
        yield


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Pushes still in flight are cancelled on shutdown."""
    app[BACKGROUND] = Background()
    yield
    await app[BACKGROUND].close()


def create_app(config: EmulatorConfig, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The emulator as an aiohttp application: WeChat's MP and WeCom APIs plus ``/_emu`` admin."""
    app = web.Application(middlewares=[edge], client_max_size=1024 * 1024)
    app[WORLD] = World(config, Clock(clock))
    app.cleanup_ctx.append(_http_session)
    app.cleanup_ctx.append(_background)
    mp_api.add_routes(app)
    wecom_api.add_routes(app)
    login.add_routes(app)
    admin.add_routes(app)
    people.add_routes(app)
    return app


@dataclass(frozen=True)
class Emulator:
    """A running emulator: its base URL and, for in-process tests, its world."""

    base_url: str
    app: web.Application

    @property
    def world(self) -> World:
        return self.app[WORLD]


@asynccontextmanager
async def run_emulator(
    config: EmulatorConfig, *, host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time
) -> AsyncIterator[Emulator]:
    """Serve the emulator on ``host:port`` (0 = a free port) for the duration of the block."""
    app = create_app(config, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        display = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield Emulator(base_url=f"http://{display}:{bound_port}", app=app)
    finally:
        await runner.cleanup()
