"""Operational endpoints: ``/healthz`` (alive), ``/readyz`` (can take traffic), ``/metrics``.

``/readyz`` answers 503 with a one-line reason when callbacks could not be committed (the spool
fails its write probe), when the relay is not running (push workers stopped, pull listener
down) or when events pile up unrelayed (oldest unacknowledged event older than
``relay.ready_max_lag_s``): a load balancer should then send WeChat elsewhere, and an operator
should look. A push relay that is merely retrying a failing sidecar stays ready until the lag
limit says otherwise: WeChat's callbacks are still safe in the spool.
"""

from __future__ import annotations

from aiohttp import web

from gateway.keys import METRICS, RELAY, SPOOL
from gateway.metrics import CONTENT_TYPE_LATEST

__all__ = ["setup_health"]


def setup_health(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers; nothing more is claimed."""
    return web.Response(text="ok", content_type="text/plain")


async def readyz(request: web.Request) -> web.Response:
    """``ready``, or 503 with the first readiness problem found (see the module docstring)."""
    problem = await check_ready(request.app)
    if problem:
        return web.Response(status=503, text=problem, content_type="text/plain")
    return web.Response(text="ready", content_type="text/plain")


async def check_ready(app: web.Application) -> str:
    """The readiness problem ("" when ready), also kept in ``wxgw_ready`` so an alert can see it.

    Nothing may poll ``/readyz`` in a DMZ (nginx does not), so each scrape runs the check too:
    one tiny durable probe write per scrape interval.
    """
    problem = await _readiness_problem(app)
    app[METRICS].ready.set(0 if problem else 1)
    return problem


async def _readiness_problem(app: web.Application) -> str:
    if not await app[SPOOL].writable():
        return "spool is not writable"
    healthy, reason = app[RELAY].healthy()  # covers relay.ready_max_lag_s
    return "" if healthy else f"relay unhealthy: {reason}"


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text; readiness and the spool gauges are refreshed on every scrape (the spool
    keeps its depth and oldest age as counters, so a scrape costs no spool query)."""
    await check_ready(request.app)
    registry = request.app[METRICS]
    stats = request.app[SPOOL].stats()
    registry.spool_depth.set(stats.depth)
    registry.oldest_unacked_age.set(stats.oldest_unacked_age_s)
    response = web.Response(body=registry.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
