"""The pull client processes each lease in one inbox commit and acknowledges only what committed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from contract import Reply
from sidecar.errors import StoreUnavailable
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher, Event, register_builtin_handlers
from sidecar.relay.transport import PullClient
from sidecar.store import Repositories, SqliteStore, open_sqlite_store
from tests.sidecar.relay.test_inbox_batch import wal_commits
from tests.sidecar.relay.test_pull import FakeGateway, pull_config
from tests.sidecar.relayhelp import event

DB = "db/sidecar.sqlite3"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / DB)
    yield opened
    await opened.close()


async def poll(tmp_path: Path, gateway: FakeGateway, store: SqliteStore, dispatcher: Dispatcher) -> int:
    async with TestServer(gateway.app()) as server, aiohttp.ClientSession() as session:
        config = pull_config(tmp_path, str(server.make_url("")).rstrip("/"))
        return await PullClient(session, config.relay, dispatcher, store, SidecarMetrics()).poll_once()


async def test_poll_once_commits_a_lease_of_100_once_and_acks_it_in_order(tmp_path: Path, store: SqliteStore) -> None:
    leased = [event("unsubscribe", openid=f"oUser{n:04d}") for n in range(100)]
    gateway = FakeGateway(queued=list(leased))
    dispatcher = Dispatcher(SidecarMetrics())
    register_builtin_handlers(dispatcher)
    before = wal_commits(tmp_path / DB)
    assert await poll(tmp_path, gateway, store, dispatcher) == 100
    assert wal_commits(tmp_path / DB) == before + 1
    assert [r["id"] for r in gateway.acks[0]] == [e["id"] for e in leased]


async def test_poll_once_store_failure_commits_and_acks_nothing(tmp_path: Path, store: SqliteStore) -> None:
    async def outage_at_third(ev: Event, tx: Repositories) -> Reply | None:
        await tx.bindings.bind("main", "user-" + ev.from_user, ev.from_user, now=ev.now)
        if ev.from_user == "oUser0002":
            raise StoreUnavailable("disk I/O error")
        return None

    dispatcher = Dispatcher(SidecarMetrics())
    dispatcher.register(outage_at_third, event="CLICK")
    leased = [event("CLICK", openid=f"oUser{n:04d}") for n in range(5)]
    gateway = FakeGateway(queued=list(leased))
    with pytest.raises(StoreUnavailable):
        await poll(tmp_path, gateway, store, dispatcher)
    assert gateway.acks == []  # the lease expires and the gateway hands the events out again
    assert await store.inbox.get_many(e["id"] for e in leased) == {}
    assert await store.bindings.list() == []
