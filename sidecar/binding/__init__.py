"""User binding: platform users connect their WeChat (MP QR scan) or WeCom (web login) id.

``setup(app)`` plugs the feature into the sidecar app (see ``sidecar.app``):

* routes — the BlueKing console endpoints under ``/console/user_center/weixin/``
  (:mod:`.console`), the page ``/bind/`` and one-time links ``/bind/{token}`` (:mod:`.pages`),
  ``POST /api/v1/binding-links`` (:mod:`.links`);
* dispatcher handlers for MP ``subscribe``/``SCAN`` (:mod:`.events`), when binding is enabled;
* a cleanup context — the service and the identity resolver (with its own HTTP session for
  BlueKing's login endpoint, which is reached directly, not through the WeChat egress proxy).

Attempts expire after ``qr_ttl_s`` (links after ``link_ttl_s``) and are refused from then on;
the core housekeeping task (``sidecar.housekeeping``) deletes them a day later.

The admin CLI (``python -m sidecar bindings …``) lives in :mod:`.cli`. docs/BINDING.md tells
the whole story for operators.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from common.config import Secret
from sidecar.binding import console, events, links, pages
from sidecar.binding.cookies import SessionCookies
from sidecar.binding.identity import BkLogin, IdentityResolver
from sidecar.binding.keys import COOKIES, IDENTITY, JINJA, SERVICE
from sidecar.binding.service import BindingService
from sidecar.config import AccountConfig, MpAccount, SidecarConfig
from sidecar.keys import CLOCK, CONFIG, DISPATCHER, STORE, TOKENS, WXAPI

log = logging.getLogger(__name__)

BROWSER_SESSION_MIN_S = 3600
BROWSER_SESSION_MAX_S = 24 * 3600


def session_keys(config: SidecarConfig) -> list[str]:
    """Key material for the browser-session cookies that only the sidecar holds.

    The accounts' AppSecrets and CorpSecrets, every replica has them and the DMZ never does.
    Not the relay secrets: the gateway holds those too, and a compromised DMZ host could then
    sign a session for any user. Changing any account secret ends the open sessions (an hour,
    a day at most); users open a fresh link.
    """
    parts = [f"{a.name}\n{_account_secret(a).reveal()}" for a in config.accounts]
    return ["\n".join(parts)] if parts else []


def _account_secret(account: AccountConfig) -> Secret:
    return account.app_secret if isinstance(account, MpAccount) else account.corp_secret


def setup(app: web.Application) -> None:
    config = app[CONFIG]
    keys = session_keys(config)
    if not keys:
        log.warning("no accounts: binding sessions are signed with a per-process key")
        keys = [secrets.token_hex(32)]
    ttl = min(max(BROWSER_SESSION_MIN_S, config.binding.qr_ttl_s), BROWSER_SESSION_MAX_S)
    app[COOKIES] = SessionCookies(
        keys, ttl_s=ttl, secure=config.server.public_url.startswith("https://"), clock=app[CLOCK]
    )
    aiohttp_jinja2.setup(
        app, app_key=JINJA, loader=jinja2.PackageLoader("sidecar", "templates"), undefined=jinja2.StrictUndefined
    )
    console.setup(app)
    pages.setup(app)
    links.setup(app)
    if config.binding.enabled:
        events.register(app[DISPATCHER])
    app.cleanup_ctx.append(binding_ctx)


async def binding_ctx(app: web.Application) -> AsyncIterator[None]:
    """The service, and the identity resolver with (for bk_login) its own HTTP session."""
    config = app[CONFIG]
    app[SERVICE] = BindingService(config, app[STORE], app[TOKENS], app[WXAPI], clock=app[CLOCK])
    session: aiohttp.ClientSession | None = None
    bk_login = None
    if config.binding.identity == "bk_login" and config.binding.bk_login_url:
        session = aiohttp.ClientSession(trust_env=False)
        bk_login = BkLogin(config.binding.bk_login_url, session, clock=app[CLOCK])
    app[IDENTITY] = IdentityResolver(config.binding, app[COOKIES], bk_login)
    try:
        yield
    finally:
        if session is not None:
            await session.close()


__all__ = ["session_keys", "setup"]
