"""The standalone binding page (``GET /bind/``) and the one-time link that opens it (``GET /bind/{token}``).

The page is rendered on the server in the user's state: bound (with an unbind button), an MP
QR code drawn inline as SVG, or the WeCom login button. A little vanilla JS polls
``get_bind_status`` every 1.5 s and flips the page to success (or to the reason it failed, or
to "expired"). Nothing is loaded from another origin; a per-response CSP nonce admits only our
own inline style and script. Language: ``?lang=zh|en``, else Accept-Language, else Chinese.

Opening ``/bind/<token>`` consumes the link (only its SHA-256 is stored; it works once and
until ``link_ttl_s``), sets the browser-session cookie and redirects (303) to ``/bind/``, so
the token leaves the address bar and is never sent on as a Referer. Only GET opens it: a HEAD
(a link scanner's probe) is answered without consuming it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup
from yarl import URL

from common.logs import short_id
from sidecar.binding import texts
from sidecar.binding.errors import BindingError, BindingRefused, NotSignedIn
from sidecar.binding.identity import Principal
from sidecar.binding.keys import COOKIES, IDENTITY, JINJA, SERVICE
from sidecar.binding.service import BindingService, Outcome
from sidecar.config import AccountConfig, MpAccount, WecomAccount
from sidecar.keys import CLOCK, CONFIG, STORE

log = logging.getLogger(__name__)

PAGE_PATH = "/bind/"
LINK_PATH = "/bind/{token}"
CONSOLE = "/console/user_center/weixin/"
STATUS_PATH = CONSOLE + "get_bind_status/"
UNBIND_PATH = CONSOLE + "unbind_wx_user_info/"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
UNDER_BIND_RE = re.compile(r"^(/+bind/)(.+)$", re.IGNORECASE | re.DOTALL)
POLL_MS = 1500


def setup(app: web.Application) -> None:
    app.router.add_get(PAGE_PATH, binding_page)
    app.router.add_get(LINK_PATH, open_link, allow_head=False)
    app.router.add_route("HEAD", LINK_PATH, peek_link)


def loggable_path(path: str) -> str:
    """``path`` for a log line: whatever follows ``/bind/`` becomes ``***``.

    A link's token is a credential until it is opened, and every request that does not open it
    leaves it valid: a failed opening (store down, binding off) and equally a mangled link that
    matches no route (``/bind/<token>/``, ``/bind/<token>/x``, ``//bind/<token>``). So the mask
    goes by the path's prefix, not by the route that matched.
    """
    return UNDER_BIND_RE.sub(r"\1***", path)


def token_hash(token: str) -> str:
    """What the store keeps of a link token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def lang_of(request: web.Request) -> texts.Lang:
    return texts.pick_lang(request.query.get("lang"), request.headers.get("Accept-Language"))


def render(request: web.Request, template: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    """A page with a fresh CSP nonce and the headers every binding page carries."""
    lang = lang_of(request)
    nonce = secrets.token_urlsafe(16)
    other: texts.Lang = "en" if lang == "zh" else "zh"
    full = {
        "lang": lang,
        "t": texts.UI[lang],
        "nonce": nonce,
        "other_lang_url": str(request.rel_url.update_query(lang=other)),
        **context,
    }
    body = aiohttp_jinja2.render_string(template, request, full, app_key=JINJA)
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; "
        f"style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def message_page(request: web.Request, message: str, *, status: int = 200, ok: bool = False) -> web.Response:
    """A page with one message: BlueKing's failure page, or a notice."""
    lang = lang_of(request)
    return render(
        request,
        "binding_result.html",
        {"ok": ok, "message": texts.reason(message, lang), "page_url": PAGE_PATH, "auto_close": False},
        status=status,
    )


def result_page(request: web.Request, outcome: Outcome) -> web.Response:
    """The WeCom login callback's answer: success closes itself after 3 s, failure says why."""
    lang = lang_of(request)
    message = texts.BIND_OK_CLOSING if lang == "zh" else "Bound. This page closes in 3 seconds."
    context = {
        "ok": outcome.ok,
        "message": message if outcome.ok else texts.reason(outcome.message, lang),
        "page_url": PAGE_PATH,
        "auto_close": outcome.ok,
    }
    return render(request, "binding_result.html", context)


def sign_in_page(request: web.Request, exc: BindingError) -> web.Response:
    config = request.app[CONFIG]
    login_url = ""
    if config.binding.identity == "bk_login" and config.binding.bk_login_url:
        origin = URL(config.binding.bk_login_url).origin()
        back = config.server.public_url + request.path_qs
        login_url = f"{origin}/login/?c_url={quote(back, safe='')}"
    context = {"message": texts.reason(exc.message, lang_of(request)), "login_url": login_url}
    return render(request, "binding_signin.html", context, status=exc.status)


async def binding_page(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        service.require_enabled()
        principal = await request.app[IDENTITY].resolve(request)
        account = service.account_for(principal, request.query.get("account"), None)
    except NotSignedIn as exc:
        log.info("binding page without identity", extra={"reason": exc.detail})
        return sign_in_page(request, exc)
    except BindingError as exc:
        log.info("binding page refused", extra={"reason": exc.detail})
        return message_page(request, exc.message, status=exc.status)
    context = await _page_context(request, service, principal, account)
    return render(request, "binding_page.html", context)


async def _page_context(
    request: web.Request, service: BindingService, principal: Principal, account: AccountConfig
) -> dict[str, Any]:
    lang = lang_of(request)
    query = {"account": account.name}
    context: dict[str, Any] = {
        "username": principal.username,
        "account": account.name,
        "kind": account.kind,
        "unbind_url": UNBIND_PATH,
    }
    cfg: dict[str, Any] = {"pollMs": POLL_MS, "unbindUrl": UNBIND_PATH, "polling": False, "expiresAt": 0}
    if lang == "en":
        cfg["reasons"] = texts.EN_REASONS
    binding = await service.binding(account.name, principal.username)
    context["binding"] = binding
    context["bound_id"] = short_id(binding.wx_id) if binding else ""
    if binding is not None and binding.active:
        context["state"] = "bound"
    else:
        try:
            context.update(await _start(service, account, principal.username))
            query["session"] = context["session_id"]
            cfg.update(polling=True, expiresAt=int(context["expires_at"] * 1000))
        except BindingRefused as exc:
            context.update(state="error", message=texts.reason(exc.message, lang))
    cfg["statusUrl"] = str(URL(STATUS_PATH).with_query(query))
    cfg["unbindUrl"] = str(URL(UNBIND_PATH).with_query(account=account.name))
    context["cfg"] = cfg
    return context


async def _start(service: BindingService, account: AccountConfig, username: str) -> dict[str, Any]:
    if isinstance(account, MpAccount):
        code = await service.start_mp(account, username)
        return {
            "state": "mp",
            "qr_svg": Markup(code.svg),  # noqa: S704 - segno's own markup from a URL it encoded
            "wechat_image_url": code.wechat_image_url,
            "session_id": code.session.id,
            "expires_at": code.session.expires_at,
        }
    assert isinstance(account, WecomAccount)
    login = await service.start_wecom(account, username)
    return {
        "state": "wecom",
        "login_url": login.url,
        "session_id": login.session.id,
        "expires_at": login.session.expires_at,
    }


async def peek_link(request: web.Request) -> web.Response:
    """``HEAD /bind/<token>``: an answer that consumes nothing.

    Mail gateways and chat previews probe links with HEAD before the user clicks; if that
    opened the link, the user would find it used. Only a GET opens it, so HEAD answers 200
    without looking the token up (its answer would otherwise tell valid tokens apart).
    """
    return web.Response(
        status=200,
        content_type="text/html",
        headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )


async def open_link(request: web.Request) -> web.Response:
    """Consume a one-time link and start the browser session it grants."""
    config = request.app[CONFIG]
    if not config.binding.enabled:
        return message_page(request, texts.NOT_ENABLED)
    token = request.match_info["token"]
    if config.binding.identity != "link" or not TOKEN_RE.match(token):
        return message_page(request, texts.LINK_INVALID, status=404)
    link = await request.app[STORE].binding_links.consume(token_hash(token), now=request.app[CLOCK]())
    if link is None or config.account(link.account) is None:
        log.info("binding link refused (unknown, used or expired)")
        return message_page(request, texts.LINK_INVALID, status=404)
    lang = request.query.get("lang")
    location = PAGE_PATH + (f"?lang={lang}" if lang in ("zh", "en") else "")
    response = web.Response(
        status=303, headers={"Location": location, "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
    )
    request.app[COOKIES].set_on(response, link.username, link.account)
    log.info("binding link opened", extra={"account": link.account, "username": link.username})
    return response


__all__ = ["PAGE_PATH", "loggable_path", "message_page", "render", "result_page", "setup", "sign_in_page", "token_hash"]
