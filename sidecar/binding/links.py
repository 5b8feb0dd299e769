"""``POST /api/v1/binding-links``: a client app asks for a one-time binding URL for one of its users.

Request (JSON or form, BlueKing caller auth): ``bk_app_code``, ``bk_app_secret`` (or a
signature), ``username``, optional ``account`` (default: the default account). Answer: the
BlueKing envelope with ``data: {"url": "<public_url>/bind/<token>", "expires_in": link_ttl_s}``.

The token is 256 random bits (``secrets.token_urlsafe(32)``); the store keeps only its SHA-256,
so a copy of the database opens no page. Opening the URL consumes it (see ``pages.open_link``).
Links are issued only when ``[binding] identity = "link"``: in the other modes the page trusts
BlueKing's login or a proxy header, and a second way in would weaken that choice.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from sidecar.binding.errors import BindingDisabled, BindingError, BindingRefused
from sidecar.binding.identity import valid_username
from sidecar.binding.pages import token_hash
from sidecar.bk.envelope import CODE_FAILED, CODE_OK, bk_response, read_params
from sidecar.errors import AuthError, SidecarError
from sidecar.keys import CALLERS, CLOCK, CONFIG, STORE
from sidecar.store import BindingLink

log = logging.getLogger(__name__)

PATH = "/api/v1/binding-links"


def setup(app: web.Application) -> None:
    app.router.add_post(PATH, create_link)


async def create_link(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    try:
        params, body = await read_params(request)
        caller = request.app[CALLERS].authenticate(
            params, method=request.method, path=request.path, query=request.query, body=body, headers=request.headers
        )
        if not config.binding.enabled:
            raise BindingDisabled("[binding] enabled = false")
        if config.binding.identity != "link":
            off = f'binding links are off ([binding] identity = "{config.binding.identity}")'
            raise BindingRefused(off, message=off)
        username, account = _target(params, config.default_account().name)
        if config.account(account) is None:
            unknown = f"account [account] unknown: {account[:40]}"
            raise BindingRefused(unknown, message=unknown)
        token = secrets.token_urlsafe(32)
        now = request.app[CLOCK]()
        ttl = config.binding.link_ttl_s
        await request.app[STORE].binding_links.create(
            BindingLink(token_hash(token), username, account, created_at=now, expires_at=now + ttl)
        )
    except SidecarError as exc:
        return _failure(exc)
    log.info("binding link issued", extra={"app_code": caller.app_code, "account": account, "username": username})
    data = {"url": f"{config.server.public_url}/bind/{token}", "expires_in": ttl}
    return bk_response(result=True, code=CODE_OK, message="success", data=data)


def _target(params: dict[str, object], default_account: str) -> tuple[str, str]:
    username = params.get("username")
    if not valid_username(username):
        raise BindingRefused("bad username", message="username [username] is required: 1-64 letters, digits, _ . @ + -")
    account = params.get("account") or default_account
    if not isinstance(account, str):
        raise BindingRefused("bad account", message="account [account] must be a string")
    assert isinstance(username, str)
    return username, account


def _failure(exc: SidecarError) -> web.Response:
    code = exc.bk_code if isinstance(exc, AuthError) else CODE_FAILED
    message = exc.message if isinstance(exc, BindingError) else exc.detail
    log.warning("binding link refused", extra={"error": type(exc).__name__, "reason": exc.detail})
    return bk_response(result=False, code=code, message=message, data=None)


__all__ = ["PATH", "create_link", "setup"]
