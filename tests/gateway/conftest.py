"""Fixtures of the gateway suites: a config in tmp_path, a fake clock, callback builders.

Accounts (credentials from the official samples, so the vectors replay against them):
``main`` MP with an EncodingAESKey and the legacy path, ``plain`` MP without a key, ``strict``
MP with require_encryption, ``corp`` WeCom, and ``mpvec``/``corpvec`` with the freshness check
off for replaying the 2014 vectors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from tests.gateway.helpers import CallbackBuilder, FakeSpool, write_config

NOW = 1_700_000_000
MP_TOKEN, MP_KEY, MP_APP_ID = "spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"
CORP_TOKEN, CORP_KEY, CORP_ID = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
PLAIN_TOKEN = "plaintoken"

ACCOUNTS = f"""
[[accounts]]
name = "main"
kind = "mp"
app_id = "{MP_APP_ID}"
token = "{MP_TOKEN}"
encoding_aes_key = "{MP_KEY}"
reply_budget = 0.3
legacy_path = true

[[accounts]]
name = "plain"
kind = "mp"
app_id = "wxplain0000000000"
token = "{PLAIN_TOKEN}"
reply_budget = 0.3

[[accounts]]
name = "strict"
kind = "mp"
app_id = "{MP_APP_ID}"
token = "{MP_TOKEN}"
encoding_aes_key = "{MP_KEY}"
require_encryption = true
reply_budget = 0.3

[[accounts]]
name = "corp"
kind = "wecom"
app_id = "{CORP_ID}"
token = "{CORP_TOKEN}"
encoding_aes_key = "{CORP_KEY}"
reply_budget = 0.3

[[accounts]]
name = "mpvec"
kind = "mp"
app_id = "{MP_APP_ID}"
token = "{MP_TOKEN}"
encoding_aes_key = "{MP_KEY}"
max_clock_skew = 0
reply_budget = 0

[[accounts]]
name = "corpvec"
kind = "wecom"
app_id = "{CORP_ID}"
token = "{CORP_TOKEN}"
encoding_aes_key = "{CORP_KEY}"
max_clock_skew = 0
reply_budget = 0
"""


@dataclass
class FakeClock:
    """Unix seconds that only move when a test says so."""

    now: float = NOW

    def __call__(self) -> float:
        return self.now


class HealthyRelay:
    def __init__(self) -> None:
        self.state: tuple[bool, str] = (True, "")

    def healthy(self) -> tuple[bool, str]:
        return self.state


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path, ACCOUNTS)


@pytest.fixture
def config(config_path: Path) -> GatewayConfig:
    return load_config(config_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spool() -> FakeSpool:
    return FakeSpool()


@pytest.fixture
def relay() -> HealthyRelay:
    return HealthyRelay()


def fake_app(config: GatewayConfig, spool: FakeSpool, relay: HealthyRelay, clock: FakeClock) -> web.Application:
    """The public app around a fake spool and relay (no SQLite, no relay worker)."""
    return create_app(config, clock=clock, spool=spool, relay=relay)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]],
    config: GatewayConfig,
    spool: FakeSpool,
    relay: HealthyRelay,
    clock: FakeClock,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    test_client = await aiohttp_client(fake_app(config, spool, relay, clock))
    yield test_client
    await spool.close()


@pytest.fixture
def mp() -> CallbackBuilder:
    return CallbackBuilder(MP_TOKEN, MP_KEY, MP_APP_ID, now=NOW)


@pytest.fixture
def plain_mp() -> CallbackBuilder:
    return CallbackBuilder(PLAIN_TOKEN, None, "wxplain0000000000", now=NOW)


@pytest.fixture
def wecom() -> CallbackBuilder:
    return CallbackBuilder(CORP_TOKEN, CORP_KEY, CORP_ID, now=NOW)
