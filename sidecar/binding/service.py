"""Binding itself: start an attempt (an MP QR code or a WeCom login), complete it, undo it.

An attempt is a :class:`BindingAttempt` in the store, created per page view or console call:

* MP — scene ``bind_<32 hex>`` (128 random bits from ``secrets``) in a temporary
  ``QR_STR_SCENE`` code living ``qr_ttl_s``; the prefix tells our codes from any other
  parametric codes the account uses, whose scans are left alone;
* WeCom — ``state`` of 32 hex digits (WeCom allows only ``[A-Za-z0-9]``), single use.

:func:`complete` binds inside the caller's transaction: the inbox's for a scan event (so a
redelivered event neither binds twice nor answers differently), a fresh one for a WeCom login
callback. One WeChat id per user and one user per id, with BlueKing's messages; an attempt
finishes once, as ``bound`` or ``failed`` with the reason the page then shows. It is the one
door both ways in pass, so it is where the id's shape is checked (:mod:`sidecar.wechat.ids`):
an openid or userid that is not one — ``@all``, ``a|b`` — is never bound.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.logs import short_id
from sidecar.binding import qr, texts, wecom
from sidecar.binding.errors import BindingDisabled, BindingRefused
from sidecar.binding.identity import Principal
from sidecar.config import AccountConfig, AccountKind, MpAccount, SidecarConfig, WecomAccount
from sidecar.errors import InvalidCode, UserAlreadyBound, WeChatError, WxIdTaken
from sidecar.store import Binding, BindingAttempt, Repositories, Store
from sidecar.wechat import ids
from sidecar.wechat.api import WeChatApi
from sidecar.wechat.tokens import TokenManager

log = logging.getLogger(__name__)

SCENE_PREFIX = "bind_"
SCENE_RE = re.compile(r"^bind_[0-9a-f]{32}$")
STATE_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


@dataclass(frozen=True)
class QrCode:
    """A QR code of an MP attempt; ``content`` is what the code encodes (WeChat's ``url``)."""

    session: BindingAttempt
    content: str
    ticket: str

    @property
    def svg(self) -> str:
        return qr.svg_markup(self.content)

    @property
    def data_uri(self) -> str:
        return qr.svg_data_uri(self.content)

    @property
    def wechat_image_url(self) -> str:
        return qr.showqrcode_url(self.ticket)


@dataclass(frozen=True)
class WecomLogin:
    session: BindingAttempt
    url: str


def new_scene() -> str:
    return SCENE_PREFIX + secrets.token_hex(16)


async def complete(repos: Repositories, session: BindingAttempt, wx_id: str, *, now: float) -> Outcome:
    """Bind ``wx_id`` to the attempt's user and finish the attempt, on the caller's transaction."""
    current = await repos.binding_attempts.get(session.id)
    if current is None or current.status != "pending":
        return Outcome(False, texts.SCENE_USED if session.kind == "mp" else texts.STATE_USED)
    account, username = session.account, session.username
    malformed = ids.problem(session.kind, wx_id)
    if malformed is not None:
        extra = {"account": account, "username": username, "reason": malformed}
        log.warning("binding refused: not a WeChat id", extra=extra)
        await repos.binding_attempts.finish(session.id, status="failed", now=now, message=texts.WX_ID_INVALID)
        return Outcome(False, texts.WX_ID_INVALID)
    mine = await repos.bindings.get(account, username)
    refusal = await _refusal(repos, mine, account, wx_id)
    if refusal is None and (mine is None or not mine.active):
        try:
            await repos.bindings.bind(account, username, wx_id, now=now)
        except UserAlreadyBound:
            refusal = texts.USER_ALREADY_BOUND
        except WxIdTaken:
            refusal = texts.WX_ID_TAKEN
    if refusal is not None:
        await repos.binding_attempts.finish(session.id, status="failed", now=now, wx_id=wx_id, message=refusal)
        log.info(
            "binding refused",
            extra={"account": account, "username": username, "wx_id": short_id(wx_id), "reason": refusal},
        )
        return Outcome(False, refusal)
    await repos.binding_attempts.finish(session.id, status="bound", now=now, wx_id=wx_id, message=texts.BIND_OK)
    log.info("user bound", extra={"account": account, "username": username, "wx_id": short_id(wx_id)})
    return Outcome(True, texts.BIND_OK)


async def _refusal(repos: Repositories, mine: Binding | None, account: str, wx_id: str) -> str | None:
    if mine is not None:
        return None if mine.wx_id == wx_id else texts.USER_ALREADY_BOUND
    owner = await repos.bindings.by_wx_id(account, wx_id)
    return texts.WX_ID_TAKEN if owner is not None else None


class BindingService:
    """The operations behind the console endpoints and the page."""

    def __init__(
        self,
        config: SidecarConfig,
        store: Store,
        tokens: TokenManager,
        api: WeChatApi,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._tokens = tokens
        self._api = api
        self._clock = clock

    def __repr__(self) -> str:
        return f"BindingService(enabled={self._config.binding.enabled})"

    @property
    def enabled(self) -> bool:
        return self._config.binding.enabled

    def require_enabled(self) -> None:
        if not self.enabled:
            raise BindingDisabled("[binding] enabled = false")

    def account_for(self, principal: Principal, requested: str | None, kind: AccountKind | None) -> AccountConfig:
        """The account a request acts on: the link's, else ``?account=``, else the default (of ``kind``)."""
        self.require_enabled()
        name = principal.account or requested
        if name:
            account = self._config.account(name)
            if account is None:
                raise BindingRefused(f"no account named {name[:40]!r}", message=texts.ACCOUNT_UNKNOWN)
        else:
            found = self._config.default_of_kind(kind) if kind else self._config.default_account()
            if found is None:
                raise BindingDisabled(f"no {kind} account is configured")
            account = found
        if kind is not None and account.kind != kind:
            raise BindingDisabled(f"account {account.name!r} is {account.kind}, not {kind}", message=texts.WRONG_KIND)
        return account

    async def binding(self, account: str, username: str) -> Binding | None:
        return await self._store.bindings.get(account, username)

    async def start_mp(self, account: MpAccount, username: str) -> QrCode:
        """A fresh QR code for ``username``; refused when the user is already (actively) bound."""
        await self._refuse_if_bound(account.name, username)
        scene = new_scene()
        ttl = self._config.binding.qr_ttl_s
        try:
            answer = await self._tokens.run(
                account.name,
                lambda token: self._api.qrcode_create(token, scene_str=scene, expire_seconds=ttl),
                safe_to_repeat=True,  # an unused QR code has no effect
            )
        except WeChatError as exc:
            log.error("QR code creation failed", extra={"account": account.name, "reason": exc.detail})
            raise BindingRefused(exc.detail, message=texts.QRCODE_FAILED) from None
        content, ticket = _qr_fields(answer)
        if not content or not ticket:
            log.error("QR code answer without url/ticket", extra={"account": account.name})
            raise BindingRefused("qrcode/create answered without url or ticket", message=texts.QRCODE_FAILED)
        session = await self._new_session(account, username, "mp", scene)
        return QrCode(session, content, ticket)

    async def start_wecom(self, account: WecomAccount, username: str) -> WecomLogin:
        await self._refuse_if_bound(account.name, username)
        state = secrets.token_hex(16)
        session = await self._new_session(account, username, "wecom", state)
        url = wecom.login_url(
            self._config.binding.wecom_login,
            corp_id=account.corp_id,
            agent_id=account.agent_id,
            redirect_uri=wecom.redirect_uri(self._config.server.public_url),
            state=state,
        )
        return WecomLogin(session, url)

    async def finish_wecom(self, state: str, code: str, principal: Principal) -> Outcome:
        """The login callback: check the state, exchange the code, bind. Every attempt uses the state up."""
        session = await self._wecom_session(state)
        now = self._clock()
        if session is None:
            return Outcome(False, texts.STATE_INVALID)
        if session.status != "pending":
            return Outcome(False, texts.STATE_USED)
        if session.expires_at <= now:
            return Outcome(False, texts.STATE_EXPIRED)
        if principal.username != session.username:
            log.warning("login callback for another user", extra={"account": session.account})
            return Outcome(False, texts.USER_MISMATCH)
        if not code:
            return Outcome(False, texts.CODE_MISSING)
        userid, problem = await self._exchange(session.account, code)
        async with self._store.transaction() as tx:
            if problem is not None:
                if not await tx.binding_attempts.finish(session.id, status="failed", now=now, message=problem):
                    return Outcome(False, texts.STATE_USED)
                return Outcome(False, problem)
            return await complete(tx, session, userid, now=now)

    async def unbind(self, account: str, username: str) -> bool:
        removed = await self._store.bindings.unbind(account, username)
        if removed:
            log.info("user unbound", extra={"account": account, "username": username})
        return removed

    async def session_for(self, account: str, username: str, session_id: str | None) -> BindingAttempt | None:
        """The attempt a page watches: the one it names (if it is the user's), else the latest."""
        if session_id:
            session = await self._store.binding_attempts.get(session_id)
            if session is not None and session.account == account and session.username == username:
                return session
            return None
        return await self._store.binding_attempts.latest_for_user(account, username)

    async def _refuse_if_bound(self, account: str, username: str) -> None:
        current = await self._store.bindings.get(account, username)
        if current is not None and current.active:
            raise BindingRefused(f"{username} is already bound on {account}", message=texts.NO_NEED)

    async def _new_session(
        self, account: AccountConfig, username: str, kind: AccountKind, scene: str
    ) -> BindingAttempt:
        now = self._clock()
        session = BindingAttempt(
            id=secrets.token_urlsafe(16),
            account=account.name,
            username=username,
            kind=kind,
            scene=scene,
            created_at=now,
            expires_at=now + self._config.binding.qr_ttl_s,
        )
        await self._store.binding_attempts.create(session)
        return session

    async def _wecom_session(self, state: str) -> BindingAttempt | None:
        if not STATE_RE.match(state):
            return None
        for account in self._config.accounts:
            if account.kind == "wecom":
                session = await self._store.binding_attempts.by_scene(account.name, state)
                if session is not None and session.kind == "wecom":
                    return session
        return None

    async def _exchange(self, account: str, code: str) -> tuple[str, str | None]:
        """The WeCom userid behind a login code, or ("", the reason it is not available)."""
        try:
            answer = await self._tokens.run(
                account, lambda token: self._api.wecom_getuserinfo(token, code), safe_to_repeat=False
            )
        except InvalidCode:
            return "", texts.CODE_INVALID
        except WeChatError as exc:
            log.error("WeCom getuserinfo failed", extra={"account": account, "reason": exc.detail})
            return "", texts.WECOM_FAILED
        userid = answer.get("userid") or answer.get("UserId")
        if not isinstance(userid, str) or not userid:
            return "", texts.NOT_MEMBER
        return userid, None


def _qr_fields(answer: dict[str, Any]) -> tuple[str, str]:
    content, ticket = answer.get("url"), answer.get("ticket")
    return (content if isinstance(content, str) else "", ticket if isinstance(ticket, str) else "")


__all__ = [
    "SCENE_PREFIX",
    "SCENE_RE",
    "BindingService",
    "Outcome",
    "QrCode",
    "WecomLogin",
    "complete",
    "new_scene",
]
