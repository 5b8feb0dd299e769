"""The request id both tiers put on every request: taken from ``X-Request-Id`` when it is sane,
made up otherwise, bound for the JSON logs (``common.logs.request_id``) and echoed on the answer.

An id set by nginx (``$request_id``, 32 hex digits) or by the other tier thus follows one
request through both tiers' logs. What a tier does with failures stays in the tier: this
middleware only names the request.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from common.logs import new_request_id, request_id

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_RE", "request_id_middleware"]

REQUEST_ID_HEADER = "X-Request-Id"
# Narrow enough to be safe in a log line and a header, wide enough for nginx's id and UUIDs.
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id for the handler's logs and put it on the answer, errors included."""
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    rid = incoming if REQUEST_ID_RE.match(incoming) else new_request_id()
    token = request_id.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own answers (404 route, 405 method)
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        request_id.reset(token)
    response.headers[REQUEST_ID_HEADER] = rid
    return response
