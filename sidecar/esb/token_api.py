"""The central-control endpoints: other intranet systems read tokens here instead of fetching them.

* ``GET|POST /api/c/compapi/weixin/get_token/`` — BlueKing's path and envelope; only clients
  with ``may_get_token``. Optional ``account`` (default: the default MP account, else the
  default account). ``data: {"access_token", "expires_in": <seconds left>}``.
* ``POST /api/v1/tokens/{account}/refresh`` — "refresh now" (after a caller saw the token
  rejected elsewhere); only clients with ``may_refresh_token``. The new token is included in
  ``data`` only for clients that may also read tokens.

Both authenticate like every BlueKing API (``sidecar.bk.callers``) and always answer HTTP 200.
"""

from __future__ import annotations

import logging

from aiohttp import web

from common.headers import NO_STORE
from sidecar.bk.callers import Caller, Permission
from sidecar.bk.envelope import CODE_FAILED, CODE_OK, CODE_THIRD_PARTY, bk_response, read_params
from sidecar.config import SidecarConfig
from sidecar.errors import AuthError, NotFound, RequestError, SidecarError, WeChatError
from sidecar.keys import CALLERS, CLOCK, CONFIG, TOKENS
from sidecar.store import TokenRecord

log = logging.getLogger(__name__)

GET_TOKEN_PATH = "/api/c/compapi/weixin/get_token/"  # noqa: S105 - a path
REFRESH_PATH = "/api/v1/tokens/{account}/refresh"


def setup(app: web.Application) -> None:
    app.router.add_route("GET", GET_TOKEN_PATH, get_token)
    app.router.add_route("POST", GET_TOKEN_PATH, get_token)
    app.router.add_post(REFRESH_PATH, refresh_token)


async def get_token(request: web.Request) -> web.Response:
    try:
        caller, params = await _authorised(request, "get_token")
        name = params.get("account") or _default_account(request.app[CONFIG])
        if not isinstance(name, str):
            raise RequestError("account [account] must be a string")
        record = await request.app[TOKENS].get(name)
    except SidecarError as exc:
        return _failure(exc)
    log.info("token handed out", extra={"app_code": caller.app_code, "account": name})
    data = _token_data(request, record, True)
    return _not_stored(bk_response(result=True, code=CODE_OK, message="success", data=data))


async def refresh_token(request: web.Request) -> web.Response:
    name = request.match_info["account"]
    try:
        caller, _ = await _authorised(request, "refresh_token")
        record = await request.app[TOKENS].refresh_now(name)
    except SidecarError as exc:
        return _failure(exc)
    log.warning("token refreshed on request", extra={"app_code": caller.app_code, "account": name})
    data = _token_data(request, record, caller.client.may_get_token)
    return _not_stored(bk_response(result=True, code=CODE_OK, message="success", data=data))


async def _authorised(request: web.Request, permission: Permission) -> tuple[Caller, dict[str, object]]:
    params, body = await read_params(request)
    auth = request.app[CALLERS]
    caller = auth.authenticate(
        params, method=request.method, path=request.path, query=request.query, body=body, headers=request.headers
    )
    auth.require(caller, permission)
    return caller, params


def _default_account(config: SidecarConfig) -> str:
    account = config.default_of_kind("mp") or config.default_account()
    return account.name


def _token_data(request: web.Request, record: TokenRecord, include_token: bool) -> dict[str, object]:
    left = max(0, int(record.expires_at - request.app[CLOCK]()))
    if include_token:
        return {"access_token": record.token.reveal(), "expires_in": left}
    return {"expires_in": left}


def _not_stored(response: web.Response) -> web.Response:
    """An answer holding an access token: no browser or proxy cache may keep it."""
    response.headers.update(NO_STORE)
    return response


def _failure(exc: SidecarError) -> web.Response:
    if isinstance(exc, AuthError):
        code = exc.bk_code
    elif isinstance(exc, WeChatError):
        code = CODE_THIRD_PARTY
    else:
        code = CODE_FAILED
    if isinstance(exc, NotFound | AuthError | RequestError):
        log.warning("token request refused", extra={"error": type(exc).__name__, "reason": exc.detail})
    else:
        log.error("token request failed", extra={"error": type(exc).__name__, "reason": exc.detail})
    return bk_response(result=False, code=code, message=exc.detail, data=None)


__all__ = ["GET_TOKEN_PATH", "REFRESH_PATH", "setup"]
