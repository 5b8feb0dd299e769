"""The gateway's public app: WeChat callbacks, health, readiness and metrics.

``create_app`` is synchronous and opens nothing; the spool and the relay are ``cleanup_ctx``
resources started in dependency order (spool, then relay) and stopped in reverse, so on
shutdown the relay stops before the spool finishes its last group commit and closes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from common.headers import plain_server_header
from gateway.config import GatewayConfig
from gateway.health import setup_health
from gateway.keys import CLOCK, CONFIG, METRICS, RELAY, SPOOL, EventSpool, RelayHealth
from gateway.metrics import GatewayMetrics
from gateway.middleware import MIDDLEWARES
from gateway.relay.service import relay_service
from gateway.spool.queue import Spool
from gateway.wechat.callback import setup_callbacks

__all__ = ["SPOOL_STORE", "create_app", "relay_ctx", "spool_ctx"]

# The concrete spool, for the relay; handlers see it as the EventSpool protocol under SPOOL.
SPOOL_STORE: web.AppKey[Spool] = web.AppKey("spool_store", Spool)


def create_app(
    config: GatewayConfig,
    *,
    clock: Callable[[], float] = time.time,
    spool: EventSpool | None = None,
    relay: RelayHealth | None = None,
) -> web.Application:
    """Build the app for ``config``; ``clock`` (unix seconds) drives freshness and timestamps.

    The spool and the relay are built from ``config`` when the app starts, unless given here:
    then the app uses them as they are and neither opens nor closes them (whoever made them
    owns them). The relay needs the real spool, so a spool of another kind comes with a relay.
    """
    if relay is None and spool is not None and not isinstance(spool, Spool):
        raise TypeError("the relay reads the real spool: pass a relay along with this spool")
    app = web.Application(client_max_size=config.server.max_body_bytes, middlewares=MIDDLEWARES)
    app.on_response_prepare.append(plain_server_header)
    app[CONFIG] = config
    app[METRICS] = GatewayMetrics()
    app[CLOCK] = clock
    setup_callbacks(app, config)
    setup_health(app)
    if spool is None:
        app.cleanup_ctx.append(spool_ctx)
    else:
        app[SPOOL] = spool
        if isinstance(spool, Spool):
            app[SPOOL_STORE] = spool
    if relay is None:
        app.cleanup_ctx.append(relay_ctx)
    else:
        app[RELAY] = relay
    return app


async def spool_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the spool before anything can accept a callback; close it last (waits for commits)."""
    spool = await Spool.open(app[CONFIG].spool, app[METRICS], clock=app[CLOCK])
    app[SPOOL_STORE] = spool
    app[SPOOL] = spool
    try:
        yield
    finally:
        await spool.close()


async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the push worker or the pull listener for as long as the app runs."""
    async with relay_service(app[CONFIG], app[SPOOL_STORE], app[METRICS], clock=app[CLOCK]) as relay:
        app[RELAY] = relay
        yield
