"""How both tiers serve HTTP: aiohttp's runner, except for requests its own parser refuses.

aiohttp answers a request it cannot parse (a request line over 8,190 bytes, one invalid byte in
the URL or a header, a bad chunk size) before any of our middleware runs: it logged the parser's
message at error level with a traceback on ``aiohttp.server``, and answered 400 with that message
as the body. The message quotes the offending line, so a legacy BlueKing GET carrying
``bk_app_secret`` in its query put the client's secret in the log and echoed it to whoever sent
it (finding F6, docs/SECURITY.md).

Here such a request is logged as one line naming only the parser's exception class and the peer,
and answered with a fixed ``400 Bad Request`` that says nothing of the request. Everything else
is aiohttp's own behaviour. Both tiers build their runners with :class:`AppRunner` and serve them
through ``common.listener.serve`` (the connection cap).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler

__all__ = ["AppRunner", "QuietParseErrors"]

log = logging.getLogger(__name__)


class QuietParseErrors(RequestHandler):
    """aiohttp's per-connection protocol, with parser failures answered and logged blind.

    aiohttp routes a parse failure to ``handle_error`` with the parser's exception; failures of
    our handlers never get here (each tier's error middleware answers them), and any that did
    keep aiohttp's handling: a 500 that shows nothing, the traceback in the log.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        _log_refusal(exc, status, request.remote)
        response = web.Response(status=status)
        response.text = f"{response.status} {response.reason}\n"
        response.force_close()
        return response


def _log_refusal(exc: HttpProcessingError, status: int, peer: str | None) -> None:
    """One line; the exception's message is never logged, as it quotes the request.

    Non-HTTP bytes (a scanner, TLS spoken to a plain port) are routine noise, so they stay at
    debug level as aiohttp has them; any other refusal is a client worth a warning.
    """
    level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.WARNING
    extra = {"reason": type(exc).__name__, "status": status, "peer": peer or "-"}
    log.log(level, "request refused by the HTTP parser", extra=extra)


class _Server(web.Server):
    """``web.Server`` whose connections are :class:`QuietParseErrors`."""

    def __call__(self) -> RequestHandler:
        return QuietParseErrors(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`QuietParseErrors`.

    aiohttp has no public hook for the protocol class: the server the application builds is
    rebuilt as :class:`_Server` with the same handler, request factory and settings.
    """

    async def _make_server(self) -> web.Server:
        built = await super()._make_server()
        return _Server(
            built.request_handler,
            request_factory=built.request_factory,
            handler_cancellation=built.handler_cancellation,
            loop=built._loop,
            **built._kwargs,
        )
