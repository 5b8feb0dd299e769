"""The edge of the public app: a request id on every request, every failure mapped to HTTP once.

A ``GatewayError`` becomes its status and a one-line plain-text reason, logged once at warning
(4xx) or error (5xx). Anything else is a bug in our code: the traceback goes to the log only and
WeChat gets a 503, so it retries the callback instead of it being lost behind a 500.
"""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from common.listener import BodyDeadlineExpired, body_deadline
from common.logs import new_request_id, request_id
from gateway.errors import BodyTimeout, ClientGone, GatewayError
from gateway.keys import CONFIG

__all__ = ["REQUEST_ID_HEADER", "body_limits", "edge"]

log = logging.getLogger("gateway.http")

REQUEST_ID_HEADER = "X-Request-Id"
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")  # nginx's $request_id is 32 hex digits
INTERNAL_REASON = "internal error; retry later"


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id for logs, run the handler, answer errors with their one line."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if _INCOMING_ID.match(incoming) else new_request_id()
    token = request_id.set(rid)
    try:
        response = await _answer(request, handler)
    except web.HTTPException as exc:  # aiohttp's own answers (404 route, 405 method)
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        request_id.reset(token)
    response.headers[REQUEST_ID_HEADER] = rid
    return response


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
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
