"""BlueKing's user-center WeChat endpoints (bk-compat.md, "User binding"), same paths and shapes.

Mounted at ``/console/user_center/weixin/``:

* ``GET mp/get_qrcode/`` → ``{"result": true, "url": …}``; ``url`` is a ``data:image/svg+xml``
  URL of the QR code drawn here, so BlueKing's own ``<img src=url>`` shows it even when the
  browser cannot reach WeChat. Extra fields: ``content`` (what the code encodes),
  ``image_url`` (WeChat's showqrcode link), ``session_id``, ``expires_in``.
* ``GET qy/get_login_url/`` → ``{"result": true, "url": <WeCom login URL>}``.
* ``GET qy/login_callback/?code=…&state=…`` → an HTML page: success (closes after 3 s) or failure.
* ``GET get_bind_status/`` → ``{"result": bool}`` (+ ``status`` and, after a failure, ``message``
  of the attempt named by ``?session=`` or the latest one).
* ``POST unbind_wx_user_info/`` → ``{"result": bool, "message": str}``.

Which account: the binding link's; else ``?account=``; else the default account (of the kind
the endpoint needs). Refusals are ``{"result": false, "message": <BlueKing's text>}``: HTTP 200
for business refusals as BlueKing answers them, 401 without identity, 403 for a cross-site POST.

CSRF: the only state-changing endpoint, the unbind POST, requires an ``Origin`` (or, lacking it,
a ``Referer``) equal to ``public_url``'s origin or to the origin the request was addressed to;
``Origin: null`` is refused whatever the Referer says.
Browsers always send Origin on a cross-site POST, so a forged form or fetch from another site
fails even when BlueKing's own ``bk_token`` cookie (whose SameSite we do not control) rides
along; our own session cookie is also SameSite=Lax. No token is needed in BlueKing's frontend,
which posts from the same origin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from common.headers import NO_STORE
from sidecar.binding import texts
from sidecar.binding.errors import BindingError, NotSignedIn, OriginRejected
from sidecar.binding.identity import Principal
from sidecar.binding.keys import IDENTITY, SERVICE
from sidecar.binding.pages import message_page, result_page
from sidecar.binding.service import Outcome
from sidecar.config import AccountConfig, AccountKind, MpAccount, WecomAccount
from sidecar.keys import CLOCK, CONFIG

log = logging.getLogger(__name__)

BASE = "/console/user_center/weixin/"
JsonHandler = Callable[[web.Request], Awaitable[dict[str, Any]]]


def setup(app: web.Application) -> None:
    app.router.add_get(BASE + "mp/get_qrcode/", _json(get_qrcode))
    app.router.add_get(BASE + "qy/get_login_url/", _json(get_login_url))
    app.router.add_get(BASE + "qy/login_callback/", login_callback)
    app.router.add_get(BASE + "get_bind_status/", _json(get_bind_status))
    app.router.add_post(BASE + "unbind_wx_user_info/", _json(unbind))


def _json(handler: JsonHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The edge of the JSON endpoints: a BindingError becomes BlueKing's refusal, once, logged."""

    async def edge(request: web.Request) -> web.Response:
        try:
            answer = await handler(request)
            status = 200
        except BindingError as exc:
            log.info("binding request refused", extra={"error": type(exc).__name__, "reason": exc.detail})
            answer, status = {"result": False, "message": exc.message}, exc.status
        # QR scenes, login states and binding status: never kept by a browser or proxy cache.
        return web.json_response(
            answer, status=status, headers=NO_STORE, dumps=lambda o: json.dumps(o, ensure_ascii=False)
        )

    edge.__name__ = handler.__name__
    return edge


async def _who(request: web.Request, kind: AccountKind | None) -> tuple[Principal, AccountConfig]:
    service = request.app[SERVICE]
    service.require_enabled()
    principal = await request.app[IDENTITY].resolve(request)
    return principal, service.account_for(principal, request.query.get("account"), kind)


async def get_qrcode(request: web.Request) -> dict[str, Any]:
    principal, account = await _who(request, "mp")
    assert isinstance(account, MpAccount)
    code = await request.app[SERVICE].start_mp(account, principal.username)
    return {
        "result": True,
        "url": code.data_uri,
        "content": code.content,
        "image_url": code.wechat_image_url,
        "session_id": code.session.id,
        "expires_in": _left(request, code.session.expires_at),
    }


async def get_login_url(request: web.Request) -> dict[str, Any]:
    principal, account = await _who(request, "wecom")
    assert isinstance(account, WecomAccount)
    login = await request.app[SERVICE].start_wecom(account, principal.username)
    return {
        "result": True,
        "url": login.url,
        "session_id": login.session.id,
        "expires_in": _left(request, login.session.expires_at),
    }


async def get_bind_status(request: web.Request) -> dict[str, Any]:
    principal, account = await _who(request, None)
    service = request.app[SERVICE]
    binding = await service.binding(account.name, principal.username)
    answer: dict[str, Any] = {"result": binding is not None and binding.active}
    session = await service.session_for(account.name, principal.username, request.query.get("session"))
    if session is not None:
        expired = session.status == "pending" and session.expires_at <= request.app[CLOCK]()
        answer["status"] = "expired" if expired else session.status
        if session.status == "failed" and session.message:
            answer["message"] = session.message
    return answer


async def unbind(request: web.Request) -> dict[str, Any]:
    check_origin(request, request.app[CONFIG].server.public_url)
    principal, account = await _who(request, None)
    if await request.app[SERVICE].unbind(account.name, principal.username):
        return {"result": True, "message": texts.UNBIND_OK}
    return {"result": False, "message": texts.NOT_BOUND}


async def login_callback(request: web.Request) -> web.Response:
    """WeCom sends the browser here after the login scan; BlueKing reads ``auth_code`` too."""
    service = request.app[SERVICE]
    try:
        service.require_enabled()
        principal = await request.app[IDENTITY].resolve(request)
    except NotSignedIn as exc:
        log.info("login callback without identity", extra={"reason": exc.detail})
        return message_page(request, exc.message, status=exc.status)
    except BindingError as exc:
        return message_page(request, exc.message, status=exc.status)
    state = request.query.get("state", "")
    code = request.query.get("code") or request.query.get("auth_code") or ""
    outcome: Outcome = await service.finish_wecom(state, code, principal)
    if not outcome.ok:
        log.info("WeCom login callback failed", extra={"reason": outcome.message})
    return result_page(request, outcome)


def check_origin(request: web.Request, public_url: str) -> None:
    """Refuse a state-changing request that a page of another origin made (see the module doc).

    The Referer is consulted only when there is no Origin at all. ``Origin: null`` is what a
    browser sends after a cross-origin redirect (a 307 keeps the POST) or from a sandboxed
    frame; the Referer then still names our page, so it must not vouch for the request.
    """
    offered = request.headers.get("Origin")
    if offered is None:
        offered = request.headers.get("Referer", "")
    origin = _origin(offered)
    allowed = {_origin(public_url), str(request.url.origin())}
    if origin is None or origin not in allowed:
        log.warning("cross-site request refused", extra={"path": request.path, "origin": offered[:100]})
        raise OriginRejected(f"origin {offered[:100]!r} is not this site")


def _origin(url: str) -> str | None:
    try:
        parsed = URL(url)
        return str(parsed.origin()) if parsed.is_absolute() else None
    except ValueError:
        return None


def _left(request: web.Request, expires_at: float) -> int:
    return max(0, int(expires_at - request.app[CLOCK]()))


__all__ = ["BASE", "check_origin", "setup"]
