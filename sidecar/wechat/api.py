"""The WeChat API client: one typed method per call the sidecar makes (wechat-protocol.md §3).

Every call goes through the app's single ``aiohttp.ClientSession`` (``trust_env=True``, so
``HTTPS_PROXY`` reaches WeChat through the intranet's egress proxy) with its own timeout.
Answers with a non-zero ``errcode`` become :class:`sidecar.errors.WeChatError` subclasses;
network failures and answers over ``common.answers.MAX_ANSWER_BYTES`` become
:class:`sidecar.errors.WeChatUnavailable`. Nothing here retries: the
token manager decides what is safe to repeat. Tokens and secrets never reach a log line or an
error message; URLs are logged only through :func:`mask_url`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from common.answers import CHUNK_BYTES, AnswerTooLarge, read_capped
from common.config import Secret
from sidecar.config import WeChatConfig
from sidecar.errors import WeChatError, WeChatUnavailable, wechat_error
from sidecar.metrics import SidecarMetrics

log = logging.getLogger(__name__)

_SECRET_PARAMS = re.compile(r"((?:access_token|secret|corpsecret|appsecret|code)=)[^&#\s]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with access_token, secrets and codes replaced by ``***`` (safe to log)."""
    return _SECRET_PARAMS.sub(r"\1***", url)


@dataclass(frozen=True)
class FetchedToken:
    token: Secret
    expires_in: int


class WeChatApi:
    """Typed WeChat calls. ``api`` names in errors and metrics: ``mp_token``, ``template_send``…"""

    def __init__(
        self, session: aiohttp.ClientSession, config: WeChatConfig, metrics: SidecarMetrics
    ) -> None:
        self._session = session
        self._config = config
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"WeChatApi(mp={self._config.mp_api!r}, wecom={self._config.wecom_api!r})"

    # tokens ---------------------------------------------------------------------------------

    async def mp_token_classic(self, app_id: str, secret: Secret) -> FetchedToken:
        """``GET /cgi-bin/token``: every fetch invalidates the previous token (after 5 min)."""
        params = {"grant_type": "client_credential", "appid": app_id, "secret": secret.reveal()}
        answer = await self._call(
            "mp_token", "GET", self._config.mp_api, "/cgi-bin/token", params=params, token_fetch=True
        )
        return _token(answer, "mp_token")

    async def mp_stable_token(self, app_id: str, secret: Secret, *, force_refresh: bool = False) -> FetchedToken:
        """``POST /cgi-bin/stable_token``: does not invalidate other holders' tokens."""
        body = {
            "grant_type": "client_credential",
            "appid": app_id,
            "secret": secret.reveal(),
            "force_refresh": force_refresh,
        }
        answer = await self._call(
            "mp_stable_token", "POST", self._config.mp_api, "/cgi-bin/stable_token", body=body, token_fetch=True
        )
        return _token(answer, "mp_stable_token")

    async def wecom_gettoken(self, corp_id: str, secret: Secret) -> FetchedToken:
        params = {"corpid": corp_id, "corpsecret": secret.reveal()}
        answer = await self._call(
            "wecom_gettoken", "GET", self._config.wecom_api, "/cgi-bin/gettoken", params=params, token_fetch=True
        )
        return _token(answer, "wecom_gettoken")

    # MP ---------------------------------------------------------------------------------------

    async def template_send(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        """Send one template message; ``message`` is WeChat's body (touser, template_id, data…)."""
        return await self._call(
            "template_send", "POST", self._config.mp_api, "/cgi-bin/message/template/send", token=token, body=message
        )

    async def qrcode_create(self, token: str, *, scene_str: str, expire_seconds: int) -> dict[str, Any]:
        """A temporary parametric QR code; the answer's ``url`` is the QR content itself."""
        body = {
            "expire_seconds": expire_seconds,
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene_str}},
        }
        return await self._call(
            "qrcode_create", "POST", self._config.mp_api, "/cgi-bin/qrcode/create", token=token, body=body
        )

    async def custom_send(self, token: str, openid: str, content: str) -> dict[str, Any]:
        """A customer-service text message (within 48 h of the user's last interaction)."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        return await self._call(
            "custom_send", "POST", self._config.mp_api, "/cgi-bin/message/custom/send", token=token, body=body
        )

    # WeCom ------------------------------------------------------------------------------------

    async def wecom_message_send(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        """An app message; the answer may list invaliduser/unlicenseduser even with errcode 0."""
        return await self._call(
            "wecom_message_send", "POST", self._config.wecom_api, "/cgi-bin/message/send", token=token, body=message
        )

    async def wecom_getuserinfo(self, token: str, code: str) -> dict[str, Any]:
        """Exchange a web-login code (single use, 5 min) for ``userid``; never retried."""
        return await self._call(
            "wecom_getuserinfo",
            "GET",
            self._config.wecom_api,
            "/cgi-bin/auth/getuserinfo",
            token=token,
            params={"code": code},
        )

    # transport --------------------------------------------------------------------------------

    async def _call(
        self,
        api: str,
        method: str,
        base: str,
        path: str,
        *,
        token: str | None = None,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        token_fetch: bool = False,
    ) -> dict[str, Any]:
        query = dict(params or {})
        if token is not None:
            query["access_token"] = token
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else None
        started = time.perf_counter()
        try:
            answer = await self._send(api, method, base + path, query, data, headers)
        except WeChatError as exc:
            self._count(api, "network" if exc.errcode is None else str(exc.errcode), started)
            raise
        errcode = answer.get("errcode", 0)
        if not isinstance(errcode, int):
            self._count(api, "malformed", started)
            raise WeChatUnavailable(None, "errcode is not an integer", api=api)
        if errcode != 0:
            self._count(api, str(errcode), started)
            errmsg = str(answer.get("errmsg", ""))[:200]
            log.warning("wechat call failed", extra={"api": api, "errcode": errcode, "errmsg": errmsg})
            raise wechat_error(errcode, errmsg, api=api, token_fetch=token_fetch)
        self._count(api, "ok", started)
        return answer

    async def _send(
        self, api: str, method: str, url: str, query: dict[str, str], data: bytes | None, headers: dict[str, str] | None
    ) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        try:
            # Never follow a redirect: a 307/308 would re-send a token request, AppSecret and
            # all, to whatever host the Location names. WeChat's APIs answer, they do not redirect.
            async with self._session.request(
                method, url, params=query, data=data, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                raw = await read_capped(response.content.iter_chunked(CHUNK_BYTES), declared=response.content_length)
                status = response.status
        except AnswerTooLarge as exc:
            log.warning("wechat answer refused", extra={"api": api, "reason": str(exc)})
            raise WeChatUnavailable(None, str(exc), api=api) from None
        except TimeoutError:
            raise WeChatUnavailable(None, f"no answer within {self._config.timeout_s:g} s", api=api) from None
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("wechat unreachable", extra={"api": api, "url": mask_url(url), "error": type(exc).__name__})
            raise WeChatUnavailable(None, f"connection failed ({type(exc).__name__})", api=api) from None
        if status >= 500:
            raise WeChatUnavailable(None, f"HTTP {status}", api=api)
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WeChatUnavailable(None, f"HTTP {status} with a body that is not JSON", api=api) from None
        if not isinstance(answer, dict):
            raise WeChatUnavailable(None, "answer is not a JSON object", api=api)
        return answer

    def _count(self, api: str, outcome: str, started: float) -> None:
        self._metrics.wechat_calls.labels(api, outcome).inc()
        self._metrics.wechat_latency.labels(api).observe(time.perf_counter() - started)


def _token(answer: dict[str, Any], api: str) -> FetchedToken:
    token, expires_in = answer.get("access_token"), answer.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
        raise WeChatUnavailable(None, "token answer without access_token/expires_in", api=api)
    return FetchedToken(Secret(token), expires_in)


__all__ = ["FetchedToken", "WeChatApi", "mask_url"]
