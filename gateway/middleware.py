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
from common.listener import BodyDeadlineExpired, body_deadline
from gateway.errors import BodyTimeout, ClientGone, GatewayError
from gateway.keys import CONFIG

__all__ = ["MIDDLEWARES", "body_limits", "edge"]

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


@web.middleware
async def body_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body not complete within ``server.body_timeout_s`` is a 408; a client that hangs up before
    its body is complete is a 400 in the log, not an unexpected error with a traceback."""
    with body_deadline(request.content, request.app[CONFIG].server.body_timeout_s):
        try:
            return await handler(request)
        except BodyDeadlineExpired as exc:
            raise BodyTimeout(str(exc)) from None
        except ConnectionResetError:
            raise ClientGone() from None


# Outermost first: the request id is bound before the edge logs anything, and the edge maps the
# body limits' errors like any other.
MIDDLEWARES = (request_id_middleware, edge, body_limits)
