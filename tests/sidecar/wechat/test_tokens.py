"""Central token control: single flight, invalid-token recovery, bounded retries, replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aioresponses import aioresponses

from sidecar.config import SidecarConfig, load_config
from sidecar.errors import CredentialRejected, NotFound, Retryable, TokenInvalid, WeChatUnavailable
from sidecar.metrics import SidecarMetrics
from sidecar.store import SqliteStore, open_sqlite_store
from sidecar.wechat.api import WeChatApi
from sidecar.wechat.tokens import TokenManager
from tests.sidecar.fakewechat import FakeWeChat
from tests.sidecar.helpers import config_text, write_config

T0 = 1_700_000_000.0


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@dataclass
class Rig:
    config: SidecarConfig
    store: SqliteStore
    api: WeChatApi
    wechat: FakeWeChat
    clock: Clock
    sleeps: Sleeps

    def manager(self) -> TokenManager:
        return TokenManager(self.config, self.store, self.api, SidecarMetrics(), clock=self.clock, sleep=self.sleeps)


@pytest.fixture
def wechat() -> Iterator[FakeWeChat]:
    with aioresponses() as mocked:
        yield FakeWeChat(mocked)


async def make_rig(tmp_path: Path, wechat: FakeWeChat, text: str | None = None) -> AsyncIterator[Rig]:
    config = load_config(write_config(tmp_path, text))
    store = await open_sqlite_store(config.store.path)
    async with aiohttp.ClientSession() as session:
        yield Rig(config, store, WeChatApi(session, config.wechat, SidecarMetrics()), wechat, Clock(), Sleeps())
    await store.close()


@pytest.fixture
async def rig(tmp_path: Path, wechat: FakeWeChat) -> AsyncIterator[Rig]:
    async for made in make_rig(tmp_path, wechat):
        yield made


@pytest.fixture
async def classic(tmp_path: Path, wechat: FakeWeChat) -> AsyncIterator[Rig]:
    text = config_text().replace('template_id = "tmpl-1"', 'template_id = "tmpl-1"\ntoken_mode = "classic"')
    async for made in make_rig(tmp_path, wechat, text):
        yield made


async def store_token(rig: Rig, token: str, *, left_s: float = 7000.0, version: int = 0) -> None:
    key = rig.config.account("main").token_key  # type: ignore[union-attr]
    saved = await rig.store.tokens.save(
        key, token, expires_at=rig.clock.now + left_s, fetched_at=rig.clock.now, expected_version=version
    )
    assert saved is not None


# single flight ----------------------------------------------------------------------------------


async def test_run_1000_concurrent_sends_cause_exactly_one_token_fetch(rig: Rig) -> None:
    rig.wechat.token_delay_s = 0.05
    tokens = rig.manager()

    async def send(token: str) -> object:
        return await rig.api.template_send(token, {"touser": "oA", "template_id": "t", "data": {}})

    await asyncio.gather(*(tokens.run("main", send, safe_to_repeat=True) for _ in range(1000)))
    assert rig.wechat.token_fetches() == 1
    assert rig.wechat.count("template_send") == 1000
    assert len({call.token for call in rig.wechat.of("template_send")}) == 1


async def test_get_uses_the_stored_token_without_fetching(rig: Rig) -> None:
    await store_token(rig, "STORED")
    record = await rig.manager().get("main")
    assert record.token.reveal() == "STORED"
    assert rig.wechat.token_fetches() == 0


async def test_get_token_persists_across_managers(rig: Rig) -> None:
    first = await rig.manager().get("main")
    second = await rig.manager().get("main")
    assert first.token == second.token
    assert rig.wechat.token_fetches() == 1


async def test_two_replicas_sharing_the_store_fetch_once(rig: Rig) -> None:
    rig.wechat.token_delay_s = 0.3  # real time, so the replica waiting for the lease polls in real time
    a, b = (TokenManager(rig.config, rig.store, rig.api, SidecarMetrics(), clock=rig.clock) for _ in range(2))
    first, second = await asyncio.gather(a.get("main"), b.get("main"))
    assert first.token == second.token
    assert rig.wechat.token_fetches() == 1


async def test_get_unknown_account_is_not_found(rig: Rig) -> None:
    with pytest.raises(NotFound):
        await rig.manager().get("nope")


# modes ------------------------------------------------------------------------------------------


async def test_mp_account_defaults_to_stable_token(rig: Rig) -> None:
    await rig.manager().get("main")
    (call,) = rig.wechat.of("mp_stable_token")
    assert call.body == {
        "grant_type": "client_credential",
        "appid": "wx1234567890abcdef",
        "secret": "mp-app-secret-for-tests",
        "force_refresh": False,
    }
    assert rig.wechat.count("mp_token") == 0


async def test_classic_mode_uses_cgi_bin_token(classic: Rig) -> None:
    await classic.manager().get("main")
    assert classic.wechat.count("mp_token") == 1
    assert classic.wechat.count("mp_stable_token") == 0


async def test_wecom_account_uses_gettoken_per_corp_and_secret(rig: Rig) -> None:
    await rig.manager().get("corp")
    (call,) = rig.wechat.of("wecom_gettoken")
    assert call.query == {"corpid": "ww1234567890", "corpsecret": "corp-secret-for-tests"}


async def test_refresh_now_fetches_even_when_fresh_and_forces_stable(rig: Rig) -> None:
    await store_token(rig, "STORED")
    record = await rig.manager().refresh_now("main")
    assert record.token.reveal() != "STORED"
    assert rig.wechat.of("mp_stable_token")[0].body["force_refresh"] is True  # type: ignore[index]


# invalid tokens ---------------------------------------------------------------------------------


async def test_run_concurrent_40001s_cause_one_refresh(rig: Rig) -> None:
    await store_token(rig, "REVOKED")  # stored, but WeChat no longer accepts it
    tokens = rig.manager()

    async def send(token: str) -> object:
        return await rig.api.template_send(token, {"touser": "oA"})

    await asyncio.gather(*(tokens.run("main", send, safe_to_repeat=True) for _ in range(50)))
    assert rig.wechat.token_fetches() == 1
    sent = rig.wechat.of("template_send")
    assert sum(c.token == "REVOKED" for c in sent) == 50
    assert sum(c.token != "REVOKED" for c in sent) == 50


async def test_invalid_token_retried_once_then_raised(rig: Rig) -> None:
    calls: list[str] = []

    async def always_invalid(token: str) -> None:
        calls.append(token)
        raise TokenInvalid(40001, "invalid credential")

    with pytest.raises(TokenInvalid):
        await rig.manager().run("main", always_invalid, safe_to_repeat=True)
    assert len(calls) == 2 and calls[0] != calls[1]
    assert rig.wechat.token_fetches() == 2  # the first fetch, then exactly one refresh


async def test_invalid_token_does_not_expire_a_token_already_replaced(rig: Rig) -> None:
    await store_token(rig, "OLD")
    key = rig.config.account("main").token_key  # type: ignore[union-attr]
    seen: list[str] = []

    async def call(token: str) -> str:
        seen.append(token)
        if token == "OLD":
            # meanwhile another replica refreshed the token
            await rig.store.tokens.save(key, "NEW", expires_at=T0 + 7000, fetched_at=T0, expected_version=1)
            raise TokenInvalid(40001, "invalid credential")
        return token

    assert await rig.manager().run("main", call, safe_to_repeat=False) == "NEW"
    assert seen == ["OLD", "NEW"]
    assert rig.wechat.token_fetches() == 0
    stored = await rig.store.tokens.get(key)
    assert stored is not None and stored.token.reveal() == "NEW" and stored.usable(T0)


async def test_stable_token_handing_back_the_refused_token_is_force_refreshed(rig: Rig) -> None:
    await store_token(rig, "STUCK")
    rig.wechat.queue("mp_stable_token", {"access_token": "STUCK", "expires_in": 5000})

    async def send(token: str) -> object:
        return await rig.api.template_send(token, {})

    await rig.manager().run("main", send, safe_to_repeat=True)
    bodies = [c.body["force_refresh"] for c in rig.wechat.of("mp_stable_token")]  # type: ignore[index]
    assert bodies == [False, True]


async def test_get_while_another_replica_holds_the_refresh_lease_waits_for_its_token(rig: Rig) -> None:
    key = rig.config.account("main").token_key  # type: ignore[union-attr]
    assert await rig.store.tokens.acquire_refresh(key, "replica-other", now=T0, ttl_s=600)

    async def other_replica_saves(delay: float) -> None:
        rig.sleeps.delays.append(delay)
        if len(rig.sleeps.delays) == 3:
            await rig.store.tokens.save(key, "THEIRS", expires_at=T0 + 7000, fetched_at=T0, expected_version=0)

    manager = TokenManager(rig.config, rig.store, rig.api, SidecarMetrics(), clock=rig.clock, sleep=other_replica_saves)
    assert (await manager.get("main")).token.reveal() == "THEIRS"
    assert (rig.wechat.token_fetches(), len(rig.sleeps.delays)) == (0, 3)


async def test_get_while_another_replica_holds_the_lease_and_saves_nothing_gives_up_after_the_ttl(rig: Rig) -> None:
    key = rig.config.account("main").token_key  # type: ignore[union-attr]
    assert await rig.store.tokens.acquire_refresh(key, "replica-other", now=T0, ttl_s=600)
    with pytest.raises(Retryable, match="another replica holds the token refresh"):
        await rig.manager().get("main")
    ttl = rig.config.wechat.timeout_s * rig.config.wechat.retry_attempts + 5.0
    assert rig.wechat.token_fetches() == 0
    assert sum(rig.sleeps.delays) == pytest.approx(ttl)


# retries ----------------------------------------------------------------------------------------


async def test_retryable_errors_are_retried_with_bounded_backoff_when_safe(rig: Rig) -> None:
    await store_token(rig, "T")
    calls = 0

    async def busy(token: str) -> None:
        nonlocal calls
        calls += 1
        raise Retryable(45009, "api freq out of limit")

    with pytest.raises(Retryable):
        await rig.manager().run("main", busy, safe_to_repeat=True)
    assert calls == rig.config.wechat.retry_attempts == 3
    assert len(rig.sleeps.delays) == 2
    first, second = rig.sleeps.delays
    assert 0 <= first <= 0.5 and 0 <= second <= 1.0  # full jitter under 0.5 s, then 1 s


async def test_retryable_error_then_success_returns_the_result(rig: Rig) -> None:
    await store_token(rig, "T")
    answers: list[object] = [WeChatUnavailable(None, "timeout"), "ok"]

    async def flaky(token: str) -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await rig.manager().run("main", flaky, safe_to_repeat=True) == "ok"


async def test_unsafe_call_is_not_retried_after_network_error(rig: Rig) -> None:
    await store_token(rig, "T")
    calls = 0

    async def send(token: str) -> None:
        nonlocal calls
        calls += 1
        raise WeChatUnavailable(None, "no answer within 10 s")

    with pytest.raises(WeChatUnavailable):
        await rig.manager().run("main", send, safe_to_repeat=False)
    assert calls == 1 and rig.sleeps.delays == []


async def test_token_fetch_retries_system_busy_then_succeeds(rig: Rig) -> None:
    rig.wechat.queue("mp_stable_token", {"errcode": -1, "errmsg": "system error"}, {"errcode": 45009, "errmsg": "x"})
    record = await rig.manager().get("main")
    assert record.token.reveal().startswith("TOKEN-")
    assert rig.wechat.count("mp_stable_token") == 3


async def test_token_fetch_gives_up_after_bounded_attempts(rig: Rig) -> None:
    rig.wechat.queue("mp_stable_token", *({"errcode": -1, "errmsg": "system error"} for _ in range(5)))
    with pytest.raises(Retryable):
        await rig.manager().get("main")
    assert rig.wechat.count("mp_stable_token") == 3


async def test_token_fetch_with_wrong_secret_is_not_retried(rig: Rig) -> None:
    rig.wechat.queue("mp_stable_token", {"errcode": 40125, "errmsg": "invalid appsecret"})
    with pytest.raises(CredentialRejected):
        await rig.manager().get("main")
    assert rig.wechat.count("mp_stable_token") == 1


# background refresh -----------------------------------------------------------------------------


async def test_refresh_due_refreshes_only_tokens_near_expiry(rig: Rig) -> None:
    tokens = rig.manager()
    first = await tokens.get("main")
    rig.clock.now += 1000
    assert await tokens.refresh_due() == 0
    rig.clock.now = first.expires_at - 200  # inside the 300 s margin
    assert await tokens.refresh_due() == 1
    assert (await tokens.get("main")).token != first.token
    assert rig.wechat.token_fetches() == 2


async def test_refresh_due_ignores_accounts_never_used(rig: Rig) -> None:
    assert await rig.manager().refresh_due() == 0
    assert rig.wechat.token_fetches() == 0


async def test_refresher_task_refreshes_in_the_background(rig: Rig) -> None:
    tokens = rig.manager()
    first = await tokens.get("main")
    rig.clock.now = first.expires_at - 10
    task = asyncio.get_running_loop().create_task(tokens.run_refresher(interval_s=0.01))
    try:
        for _ in range(200):
            if rig.wechat.token_fetches() == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert rig.wechat.token_fetches() == 2
