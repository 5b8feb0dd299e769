"""Central access-token control (中控): one place fetches, caches, refreshes and hands out tokens.

Per account: MP via ``stable_token`` (default) or the classic ``/cgi-bin/token``; WeCom per
(corp id, secret). Tokens live in the TokenStore, so every replica shares them.

What it guarantees (wechat-protocol.md §3, "known SDK failures to avoid"):

* single flight — N concurrent callers needing a token cause one fetch: an asyncio task per
  token key in this process, plus a refresh lease and a version check in the store so replicas
  neither fetch at once nor overwrite each other's token blindly;
* refreshed ahead of expiry (``token_margin_s``) by a background task, so callers rarely wait;
* on 40001/40014/42001 the stored token is expired only if it is still the one that failed,
  then fetched once and the call retried once — never a loop;
* ``-1``, 45009 and network errors are retried with bounded backoff (``common.retry``) — token fetches
  always (they are safe to repeat), other calls only when the caller says ``safe_to_repeat``
  (a template send with a ``client_msg_id``, a WeCom send with duplicate check on).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, TypeVar

from common.retry import RetryPolicy
from sidecar.config import AccountConfig, MpAccount, SidecarConfig
from sidecar.errors import NotFound, Retryable, TokenInvalid
from sidecar.metrics import SidecarMetrics
from sidecar.store import Store, TokenRecord
from sidecar.wechat.api import FetchedToken, WeChatApi

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_POLL_S = 0.1
STABLE_FORCE_SPACING_S = 30.0  # WeChat: force_refresh at most every 30 s (and 20 times a day)
RETRY_MAX_S = 30.0  # the cap of a retry pause; callers wait through it, so keep it short


class TokenManager:
    def __init__(
        self,
        config: SidecarConfig,
        store: Store,
        api: WeChatApi,
        metrics: SidecarMetrics,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._store = store
        self._api = api
        self._clock = clock
        self._metrics = metrics
        self._sleep = sleep
        self._retry = RetryPolicy(config.wechat.retry_backoff_s, RETRY_MAX_S)
        self._owner = "replica-" + secrets.token_hex(8)
        self._inflight: dict[str, asyncio.Task[TokenRecord]] = {}
        self._last_force: dict[str, float] = {}
        self._margin = float(config.wechat.token_margin_s)
        # A caller waits for a fetch only when less than this is left; the refresher acts earlier.
        self._min_left = min(60.0, self._margin / 2)

    def __repr__(self) -> str:
        return f"TokenManager(accounts={len(self._config.accounts)})"

    def account(self, name: str) -> AccountConfig:
        account = self._config.account(name)
        if account is None:
            raise NotFound(f"no account named {name!r}")
        return account

    # the public calls ---------------------------------------------------------------------------

    async def get(self, name: str) -> TokenRecord:
        """A usable token for the account, fetching it (once, for all callers) when needed."""
        account = self.account(name)
        record = await self._store.tokens.get(account.token_key)
        if record is not None and record.usable(self._clock(), self._min_left):
            return record
        return await self._single_flight(account, partial(self._refresh, account, need_left=self._min_left))

    async def refresh_now(self, name: str) -> TokenRecord:
        """The "refresh now" entry point: fetch a new token whatever the cached one's state."""
        account = self.account(name)
        return await self._single_flight(account, partial(self._refresh, account, force=True))

    async def run(self, name: str, call: Callable[[str], Awaitable[T]], *, safe_to_repeat: bool) -> T:
        """Run ``call(access_token)`` with one invalid-token recovery and bounded retries.

        ``safe_to_repeat``: the call may be sent again after a timeout or a ``-1``/45009 answer
        without a second effect (WeChat dedupes it, or it has no effect). Otherwise such errors
        propagate at once, because the first attempt may have been delivered.
        """
        attempts = 0
        recovered = False
        while True:
            record = await self.get(name)
            try:
                return await call(record.token.reveal())
            except TokenInvalid:
                if recovered:
                    raise
                recovered = True
                await self._recover(name, record)
            except Retryable:
                attempts += 1
                if not safe_to_repeat or attempts >= self._config.wechat.retry_attempts:
                    raise
                await self._sleep(self._retry.delay(attempts))

    async def refresh_due(self) -> int:
        """Refresh every token within ``token_margin_s`` of expiry; returns how many were fetched.

        Only tokens already in the store are kept fresh: an account nobody uses costs nothing.
        """
        refreshed = 0
        for account in self._unique_accounts():
            record = await self._store.tokens.get(account.token_key)
            if record is None or record.usable(self._clock(), self._margin):
                continue
            try:
                await self._single_flight(account, partial(self._refresh, account, need_left=self._margin))
                refreshed += 1
            except Exception as exc:
                log.warning("token refresh failed", extra={"account": account.name, "error": str(exc)})
        return refreshed

    async def run_refresher(self, interval_s: float = 30.0) -> None:
        """The background task: check every ``interval_s`` seconds, until cancelled."""
        while True:
            try:
                await self.refresh_due()
            except Exception:
                log.exception("token refresher round failed")
            await self._sleep(interval_s)

    # recovery and fetching ----------------------------------------------------------------------

    async def _recover(self, name: str, failed: TokenRecord) -> None:
        """A call said the token is invalid: expire it if still stored, then get a new one once."""
        account = self.account(name)
        expired = await self._store.tokens.invalidate(account.token_key, failed.token.reveal())
        self._metrics.token_invalidations.labels(account.name, "yes" if expired else "no").inc()
        log.warning("access token rejected by WeChat", extra={"account": account.name, "expired_it": expired})
        current = await self._store.tokens.get(account.token_key)
        if current is not None and current.version != failed.version and current.usable(self._clock()):
            return  # somebody already replaced it
        await self._single_flight(account, partial(self._refresh, account, failed=failed))

    async def _single_flight(
        self, account: AccountConfig, start: Callable[[], Coroutine[Any, Any, TokenRecord]]
    ) -> TokenRecord:
        """Join the fetch in flight for this token key, or start it; shielded from one waiter's cancel."""
        key = account.token_key
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(start())
            self._inflight[key] = task
            task.add_done_callback(partial(self._forget, key))
        return await asyncio.shield(task)

    def _forget(self, key: str, task: asyncio.Task[TokenRecord]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported as lost

    async def _refresh(
        self,
        account: AccountConfig,
        *,
        failed: TokenRecord | None = None,
        force: bool = False,
        need_left: float = 0.0,
    ) -> TokenRecord:
        """Fetch under the store's refresh lease, unless the stored token already does.

        The stored token does when it has ``need_left`` seconds left and is not the one that
        just ``failed`` (another task or replica replaced it meanwhile). ``force`` always fetches.
        """
        key = account.token_key
        ttl = self._config.wechat.timeout_s * self._config.wechat.retry_attempts + 5.0
        async with self._lease(key, ttl) as leased:
            current = await self._store.tokens.get(key)
            if not force and _good(current, failed, self._clock(), need_left):
                assert current is not None
                return current
            if not leased:
                return await self._wait_for_other(key, current, ttl)
            fetched = await self._fetch(account, failed, force)
            now = self._clock()
            saved = await self._store.tokens.save(
                key,
                fetched.token.reveal(),
                expires_at=now + fetched.expires_in,
                fetched_at=now,
                expected_version=current.version if current else 0,
            )
            self._metrics.token_ttl.labels(account.name).set(fetched.expires_in)
            if saved is not None:
                return saved
            latest = await self._store.tokens.get(key)
            return latest if latest is not None else TokenRecord(key, fetched.token, now + fetched.expires_in, now, 0)

    def _lease(self, key: str, ttl: float) -> _Lease:
        return _Lease(self._store, key, self._owner, self._clock, ttl)

    async def _wait_for_other(self, key: str, current: TokenRecord | None, ttl: float) -> TokenRecord:
        """Another replica holds the lease: wait for its token rather than fetching a second one.

        The wait is counted in polls (``ttl`` worth of them), not read off a clock, so it runs on
        the injected ``sleep`` alone.
        """
        for _ in range(math.ceil(ttl / LEASE_POLL_S)):
            await self._sleep(LEASE_POLL_S)
            latest = await self._store.tokens.get(key)
            if latest is not None and (current is None or latest.version != current.version):
                if latest.usable(self._clock()):
                    return latest
        raise Retryable(None, "another replica holds the token refresh and produced no token", api="token")

    async def _fetch(self, account: AccountConfig, failed: TokenRecord | None, force: bool) -> FetchedToken:
        """Fetch from WeChat with bounded backoff (a token fetch is always safe to repeat)."""
        attempts = 0
        while True:
            try:
                fetched = await self._fetch_once(account, failed, force)
                self._count(account, "ok")
                return fetched
            except Retryable:
                attempts += 1
                self._count(account, "retryable")
                if attempts >= self._config.wechat.retry_attempts:
                    raise
                await self._sleep(self._retry.delay(attempts))
            except Exception:
                self._count(account, "failed")
                raise

    async def _fetch_once(self, account: AccountConfig, failed: TokenRecord | None, force: bool) -> FetchedToken:
        if not isinstance(account, MpAccount):
            return await self._api.wecom_gettoken(account.corp_id, account.corp_secret)
        if account.token_mode == "classic":  # noqa: S105 - a mode name
            return await self._api.mp_token_classic(account.app_id, account.app_secret)
        if force and self._may_force(account):
            return await self._api.mp_stable_token(account.app_id, account.app_secret, force_refresh=True)
        fetched = await self._api.mp_stable_token(account.app_id, account.app_secret)
        if failed is not None and fetched.token == failed.token and self._may_force(account):
            # stable_token handed back the very token WeChat just refused: force a new one, once.
            fetched = await self._api.mp_stable_token(account.app_id, account.app_secret, force_refresh=True)
        return fetched

    def _may_force(self, account: MpAccount) -> bool:
        now = self._clock()
        if now - self._last_force.get(account.token_key, float("-inf")) < STABLE_FORCE_SPACING_S:
            return False
        self._last_force[account.token_key] = now
        return True

    def _unique_accounts(self) -> list[AccountConfig]:
        seen: dict[str, AccountConfig] = {}
        for account in self._config.accounts:
            seen.setdefault(account.token_key, account)
        return list(seen.values())

    def _count(self, account: AccountConfig, outcome: str) -> None:
        self._metrics.token_fetches.labels(account.name, outcome).inc()


def _good(current: TokenRecord | None, failed: TokenRecord | None, now: float, need_left: float) -> bool:
    if current is None or not current.usable(now, need_left):
        return False
    return failed is None or current.token != failed.token


class _Lease:
    """``async with``: hold the store's refresh lease for a key if free; yields whether we got it."""

    def __init__(self, store: Store, key: str, owner: str, clock: Callable[[], float], ttl: float) -> None:
        self._store, self._key, self._owner, self._clock, self._ttl = store, key, owner, clock, ttl
        self._held = False

    async def __aenter__(self) -> bool:
        self._held = await self._store.tokens.acquire_refresh(
            self._key, self._owner, now=self._clock(), ttl_s=self._ttl
        )
        return self._held

    async def __aexit__(self, *exc: object) -> None:
        if self._held:
            await self._store.tokens.release_refresh(self._key, self._owner)


__all__ = ["TokenManager"]
