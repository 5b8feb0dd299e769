"""The sidecar's aiohttp application: typed state, lifecycle, middleware, health endpoints.

``create_app(config)`` is synchronous and side-effect free. Resources are cleanup contexts, one
each, in dependency order: store → HTTP session (+ WeChat API client) → token manager (+ its
background refresher) → features' contexts (e.g. the relay pull client). App state lives under
the typed ``web.AppKey`` constants of ``sidecar.keys``.

Features plug in with one import and one call in :func:`create_app`: each feature module
exposes ``setup(app: web.Application) -> None`` that adds its routes, cleanup contexts (which
run after the core ones, so STORE, HTTP, WXAPI and TOKENS are ready) and dispatcher handlers
(``app[DISPATCHER].register(handler, kind="mp", msg_type="event", event="subscribe")``).
Everything, features, tools and tests alike, imports the AppKeys from ``sidecar.keys``: one
import path (importing them from ``sidecar.app`` would be circular for features).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from common.headers import plain_server_header
from common.http import request_id_middleware
from common.listener import BodyDeadlineExpired, body_deadline
from sidecar import binding, esb
from sidecar.binding.pages import loggable_path
from sidecar.bk.callers import CallerAuth
from sidecar.config import SidecarConfig
from sidecar.errors import BodyTimeout, ClientGone, SidecarError, StoreError
from sidecar.esb import token_api
from sidecar.housekeeping import housekeeping_ctx
from sidecar.keys import (
    CALLERS,
    CLOCK,
    CONFIG,
    DISPATCHER,
    HTTP,
    HTTP_FACTORY,
    METRICS,
    STORE,
    TOKENS,
    WXAPI,
    Clock,
    SessionFactory,
)
from sidecar.metrics import CONTENT_TYPE_LATEST, SidecarMetrics
from sidecar.relay import transport
from sidecar.relay.inbox import Dispatcher, register_builtin_handlers
from sidecar.store import open_store
from sidecar.wechat.api import WeChatApi
from sidecar.wechat.tokens import TokenManager

log = logging.getLogger("sidecar.app")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = ["create_app", "default_http_session"]

def create_app(
    config: SidecarConfig,
    *,
    clock: Clock = time.time,
    http_session_factory: SessionFactory | None = None,
) -> web.Application:
    """Build the application; nothing is opened until the app starts."""
    app = web.Application(
        middlewares=[request_id_middleware, access_log_middleware, error_middleware, body_limits],
        client_max_size=config.server.max_body_bytes,
    )
    app.on_response_prepare.append(plain_server_header)
    metrics = SidecarMetrics()
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[HTTP_FACTORY] = http_session_factory or (lambda: default_http_session(config))
    app[DISPATCHER] = Dispatcher(metrics, clock=clock)
    app[DISPATCHER].limit_accounts(frozenset(a.name for a in config.accounts))
    register_builtin_handlers(app[DISPATCHER])
    app[CALLERS] = CallerAuth(config.clients, clock=clock)
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(http_ctx)
    app.cleanup_ctx.append(tokens_ctx)
    app.cleanup_ctx.append(housekeeping_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    # Features, one line each (their cleanup contexts run after the core ones above).
    transport.setup(app)
    token_api.setup(app)
    esb.setup(app)
    binding.setup(app)
    return app


def default_http_session(config: SidecarConfig) -> aiohttp.ClientSession:
    """The one outbound session: honours HTTPS_PROXY/NO_PROXY (trust_env) and always times out."""
    return aiohttp.ClientSession(
        trust_env=True,
        timeout=aiohttp.ClientTimeout(total=config.wechat.timeout_s),
        raise_for_status=False,
    )


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[CONFIG].store)
    app[STORE] = store
    log.info("store opened", extra={"store": repr(store), "schema_version": await store.schema_version()})
    try:
        yield
    finally:
        await store.close()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one outbound session and the WeChat API client that uses it."""
    session = app[HTTP_FACTORY]()
    app[HTTP] = session
    app[WXAPI] = WeChatApi(session, app[CONFIG].wechat, app[METRICS])
    try:
        yield
    finally:
        await session.close()


async def tokens_ctx(app: web.Application) -> AsyncIterator[None]:
    """The token manager and its background refresher."""
    manager = TokenManager(app[CONFIG], app[STORE], app[WXAPI], app[METRICS], clock=app[CLOCK])
    app[TOKENS] = manager
    task = asyncio.get_running_loop().create_task(manager.run_refresher())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process and its event loop answer; nothing more is claimed."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the store answers a query (migrations ran when it opened), else 503 with why.

    Only the store is consulted: without it nothing works, whereas a failing relay pull client
    or WeChat outage leaves the rest serving (they show in ``wxsc_pull_errors_total`` and
    ``wxsc_wechat_calls_total``).
    """
    problem = await check_ready(request.app)
    if problem:
        return web.json_response({"status": "unavailable", "reason": problem}, status=503)
    return web.json_response({"status": "ready"})


async def check_ready(app: web.Application) -> str:
    """The readiness problem ("" when ready), also kept in ``wxsc_ready`` for alerting on any scrape."""
    try:
        await app[STORE].ping()
    except StoreError as exc:
        app[METRICS].ready.set(0)
        return exc.detail or type(exc).__name__
    app[METRICS].ready.set(1)
    return ""


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text, with readiness checked first so ``wxsc_ready`` is never stale."""
    await check_ready(request.app)
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One JSON access line and the request counter (path only: queries carry secrets).

    It runs inside ``common.http.request_id_middleware``, so the line carries the request id.
    """
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_name(request)
        request.app[METRICS].http_requests.labels(route, str(status)).inc()
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": loggable_path(request.path),
                "route": route,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map SidecarError to its status with a short JSON reason; never a traceback to the client.

    Features with their own answer format (the BlueKing envelope) catch their errors themselves;
    this is the one mapping for everything else.
    """
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except SidecarError as exc:
        log.warning("request failed", extra={"error": type(exc).__name__, "reason": exc.detail})
        return web.json_response({"error": exc.reason, "detail": exc.detail}, status=exc.status)
    except Exception:
        log.exception("unhandled error")
        return web.json_response({"error": "internal error"}, status=500)


@web.middleware
async def body_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body not complete within ``server.body_timeout_s`` is a 408; a client that hangs up before
    its body is complete is a 400 in the log, not an unhandled error with a traceback."""
    with body_deadline(request.content, request.app[CONFIG].server.body_timeout_s):
        try:
            return await handler(request)
        except BodyDeadlineExpired as exc:
            raise BodyTimeout(str(exc)) from None
        except ConnectionResetError:
            raise ClientGone() from None


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"
