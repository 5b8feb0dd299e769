"""Fixtures of the fuzz suites: the real apps (SQLite in tmp_path), signed relay peers, an error watch.

The gateway is ``gateway.app.create_app`` with the accounts of ``tests/gateway/conftest.py`` and
a pull relay on an ephemeral port, so one app serves both the callback endpoint and the pull
listener; its clock stands still at ``NOW``. The sidecar is ``sidecar.app.create_app`` with the
config of ``tests/sidecar/helpers.py``; ``bk`` is the same with WeChat mocked (FakeWeChat).
``target`` runs a relay test once per relay endpoint (pull lease, pull ack, sidecar push).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aioresponses import aioresponses

import contract
from gateway.app import SPOOL_STORE, create_app
from gateway.config import load_config
from gateway.keys import METRICS, RELAY
from gateway.relay.service import RelayService
from gateway.spool.queue import Spool
from sidecar.app import create_app as create_sidecar
from sidecar.config import load_config as load_sidecar_config
from sidecar.keys import CONFIG as SIDECAR_CONFIG
from tests.fuzz.bk import BlueKing
from tests.fuzz.callbacks import Callbacks
from tests.fuzz.relay import Target, ack_target, lease_target, push_target, relay_envelope
from tests.fuzz.support import ServerErrors, watch_server_errors
from tests.gateway.conftest import ACCOUNTS, FakeClock
from tests.gateway.helpers import write_config
from tests.sidecar.fakewechat import FakeWeChat
from tests.sidecar.helpers import RELAY_SECRET, WECHAT
from tests.sidecar.helpers import write_config as write_sidecar_config

GATEWAY_SECRET = contract.generate_secret()
AppClient = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[AppClient]]


@pytest.fixture(autouse=True)
def server_errors() -> Iterator[ServerErrors]:
    """Fails the test if anything was logged at ERROR while it ran (a crash is always logged)."""
    yield from watch_server_errors()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# The gateway suites' accounts, answering at once: a fuzz example must not wait out a reply budget.
FUZZ_ACCOUNTS = ACCOUNTS.replace("reply_budget = 0.3", "reply_budget = 0")


def pull_relay_text(secret: str = GATEWAY_SECRET) -> str:
    return f'[relay]\nmode = "pull"\npull_listen = "127.0.0.1:0"\nsecrets = ["{secret}"]\nlease_s = 30\n'


@pytest.fixture
async def gateway(aiohttp_client: ClientFactory, tmp_path: Path, clock: FakeClock) -> AppClient:
    """The assembled gateway: real spool in tmp_path, pull listener on an ephemeral port."""
    config = load_config(write_config(tmp_path, FUZZ_ACCOUNTS, relay=pull_relay_text()))
    return await aiohttp_client(create_app(config, clock=clock))


@pytest.fixture
def spool(gateway: AppClient) -> Spool:
    return gateway.app[SPOOL_STORE]


@pytest.fixture
async def pull_base(gateway: AppClient) -> str:
    """The pull listener's base URL (it is a separate aiohttp app on its own port)."""
    relay = gateway.app[RELAY]
    assert isinstance(relay, RelayService)
    address = relay.listen_address
    assert address is not None
    return f"http://{address[0]}:{address[1]}"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def sidecar(aiohttp_client: ClientFactory, tmp_path: Path) -> AppClient:
    """The assembled sidecar (push relay receiver, BlueKing API) with its SQLite store in tmp_path."""
    side = tmp_path / "sidecar"
    side.mkdir()
    return await aiohttp_client(create_sidecar(load_sidecar_config(write_sidecar_config(side))))


@pytest.fixture
async def bk(aiohttp_client: ClientFactory, tmp_path: Path) -> AsyncIterator[BlueKing]:
    """The sidecar's BlueKing API with WeChat mocked (aioresponses lets the test server through)."""
    passthrough: list[str] = []
    with aioresponses(passthrough=passthrough) as mocked:
        wechat = FakeWeChat(mocked)
        side = tmp_path / "bk"
        side.mkdir()
        config = load_sidecar_config(write_sidecar_config(side, replace={"wechat": WECHAT + "retry_backoff_s = 0\n"}))
        client = await aiohttp_client(create_sidecar(config))
        passthrough.append(str(client.make_url("/")))
        yield BlueKing(client, wechat)


@pytest.fixture(params=["lease", "ack", "push"])
async def target(
    request: pytest.FixtureRequest,
    gateway: AppClient,
    sidecar: AppClient,
    pull_base: str,
    session: aiohttp.ClientSession,
    clock: FakeClock,
) -> Target:
    """Each relay endpoint in turn; the gateway holds one unacknowledged event, which no refused
    ack may acknowledge."""
    spool = gateway.app[SPOOL_STORE]
    await spool.commit(relay_envelope(0))
    if request.param == "lease":
        return lease_target(session, pull_base, GATEWAY_SECRET, clock, gateway.app[METRICS])
    if request.param == "ack":
        return ack_target(session, pull_base, GATEWAY_SECRET, clock, spool)
    return push_target(sidecar, RELAY_SECRET, sidecar.app[SIDECAR_CONFIG].store.path)


@pytest.fixture
def gw(gateway: AppClient, spool: Spool) -> Callbacks:
    return Callbacks(gateway, spool)


__all__ = ["GATEWAY_SECRET", "RELAY_SECRET", "AppClient"]
