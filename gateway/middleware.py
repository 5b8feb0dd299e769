"""The edge of the public app: every failure mapped to HTTP once (the request id is common's).

A ``GatewayError`` becomes its status and a one-line plain-text reason, logged once at warning
(4xx) or error (5xx). Anything else is a bug in our code: the traceback goes to the log only and
WeChat gets a 503, so it retries the callback instead of it being lost behind a 500.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from common.http import request_id_middleware
from gateway.errors import GatewayError

__all__ = ["MIDDLEWARES", "edge"]

log = logging.getLogger("gateway.http")

INTERNAL_REASON = "internal error; retry later"


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler; answer a GatewayError with its one line and a bug with a 503.

    It runs inside ``common.http.request_id_middleware``, so its log lines carry the request id.
    """
    try:
        return await handler(request)
    except GatewayError as exc:
        reason = " ".join(exc.detail.split())[:300]
        level = logging.WARNING if exc.status < 500 else logging.ERROR
        log.log(
            level,
            "request refused",
            extra={"status": exc.status, "reason": reason, "method": request.method, "path": request.path},
        )
        return web.Response(status=exc.status, text=reason, content_type="text/plain")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error", extra={"method": request.method, "path": request.path})
        return web.Response(status=503, text=INTERNAL_REASON, content_type="text/plain")


# Outermost first: the request id is bound before the edge logs anything.
MIDDLEWARES = (request_id_middleware, edge)
