"""A relayed batch in one durable commit: per-event isolation, duplicates, failures, order, retries."""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contract import Reply, text_reply
from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.errors import StoreUnavailable
from sidecar.keys import DISPATCHER, STORE
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher, Event, register_builtin_handlers
from sidecar.store import Repositories, SqliteStore, open_sqlite_store
from tests.sidecar.helpers import write_config
from tests.sidecar.relayhelp import event, signed, text_message

PATH = "/relay/v1/events"
PROCESSED = "event processed"


def wal_commits(db: Path) -> int:
    """Durable commits in the database's write-ahead log: frames that end a transaction.

    A WAL frame header holds the page number, then the database size after the commit (0 on
    frames that do not end one), then the WAL header's two salts (frames left over from before
    the log restarted carry older salts). Big-endian, 24 bytes; the page follows it.
    """
    data = (db.parent / (db.name + "-wal")).read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    commits, offset = 0, 32
    while offset + 24 + page_size <= len(data):
        header = data[offset : offset + 24]
        if header[8:16] == salts and struct.unpack(">I", header[4:8])[0] != 0:
            commits += 1
        offset += 24 + page_size
    return commits


def handled_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.event_id for r in caplog.records if r.getMessage() == PROCESSED]  # type: ignore[attr-defined]


def unsubscribes(count: int) -> list[Any]:
    return [event("unsubscribe", openid=f"oUser{n:04d}") for n in range(count)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "db" / "sidecar.sqlite3")
    yield opened
    await opened.close()


async def make_client(aiohttp_client: Any, tmp_path: Path, *handlers: Any) -> TestClient[Any, Any]:
    app = create_app(load_config(write_config(tmp_path)))
    for handler, kwargs in handlers:
        app[DISPATCHER].register(handler, **kwargs)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def push(client: TestClient[Any, Any], events: list[Any], status: int = 200) -> Any:
    body, headers = signed({"events": events})
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == status, await response.text()
    return (await response.json())["results"] if status == 200 else None


async def binds_then(
    aiohttp_client: Any, tmp_path: Path, fail: dict[str, Exception]
) -> tuple[TestClient[Any, Any], list[str]]:
    """A client whose CLICK handler binds the sender, then raises ``fail[openid]`` if set."""
    runs: list[str] = []

    async def bind_sender(ev: Event, tx: Repositories) -> Reply | None:
        runs.append(ev.from_user)
        await tx.bindings.bind("main", "user-" + ev.from_user, ev.from_user, now=ev.now)
        if ev.from_user in fail:
            raise fail[ev.from_user]
        return text_reply("bound " + ev.from_user)

    return await make_client(aiohttp_client, tmp_path, (bind_sender, {"event": "CLICK"})), runs


def clicks(count: int) -> list[Any]:
    return [event("CLICK", openid=f"oUser{n:04d}") for n in range(count)]


# one commit -------------------------------------------------------------------------------------


async def test_process_batch_of_100_is_one_durable_commit(store: SqliteStore, tmp_path: Path) -> None:
    for n in range(0, 100, 2):  # half the senders are bound, so their unsubscribe writes too
        await store.bindings.bind("main", f"u{n}", f"oUser{n:04d}", now=1.0)
    dispatcher = Dispatcher(SidecarMetrics())
    register_builtin_handlers(dispatcher)
    before = wal_commits(tmp_path / "db" / "sidecar.sqlite3")
    results = await dispatcher.process_batch(store, unsubscribes(100))
    assert wal_commits(tmp_path / "db" / "sidecar.sqlite3") == before + 1
    assert [r["status"] for r in results] == ["accepted"] * 100
    assert [b.active for b in await store.bindings.list()] == [False] * 50


async def test_process_batch_of_one_sent_twice_is_accepted_then_duplicate(store: SqliteStore) -> None:
    dispatcher = Dispatcher(SidecarMetrics())
    sent = text_message("你好")
    assert [r["status"] for r in await dispatcher.process_batch(store, [sent])] == ["accepted"]
    assert [r["status"] for r in await dispatcher.process_batch(store, [sent])] == ["duplicate"]


async def test_process_empty_batch_touches_nothing(store: SqliteStore, tmp_path: Path) -> None:
    before = wal_commits(tmp_path / "db" / "sidecar.sqlite3")
    assert await Dispatcher(SidecarMetrics()).process_batch(store, []) == []
    assert wal_commits(tmp_path / "db" / "sidecar.sqlite3") == before


# isolation of a failing handler -----------------------------------------------------------------


async def test_push_failing_handler_mid_batch_loses_only_its_own_effects(aiohttp_client: Any, tmp_path: Path) -> None:
    client, _ = await binds_then(aiohttp_client, tmp_path, {"oUser0002": KeyError("bug")})
    sent = clicks(5)
    results = await push(client, sent)
    assert [r["status"] for r in results] == ["accepted"] * 5
    assert [r["reply"] for r in results][1:4] == [text_reply("bound oUser0001"), None, text_reply("bound oUser0003")]
    store = client.app[STORE]
    assert [b.wx_id for b in await store.bindings.list()] == ["oUser0000", "oUser0001", "oUser0003", "oUser0004"]
    failed = await store.inbox.get(sent[2]["id"])
    assert failed is not None and failed.error == "KeyError: 'bug'" and failed.processed_at is not None


async def test_push_handler_conflict_fails_its_event_not_the_batch(aiohttp_client: Any, tmp_path: Path) -> None:
    client, _ = await binds_then(aiohttp_client, tmp_path, {})
    await client.app[STORE].bindings.bind("main", "someone", "oUser0001", now=1.0)
    results = await push(client, clicks(3))  # binding oUser0001 again raises WxIdTaken
    assert [r["reply"] for r in results] == [text_reply("bound oUser0000"), None, text_reply("bound oUser0002")]
    record = await client.app[STORE].inbox.get(results[1]["id"])
    assert record is not None and (record.error or "").startswith("WxIdTaken")


async def test_push_handler_using_the_store_instead_of_its_tx_fails_only_its_event(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    app_store: list[Any] = []

    async def misuse(ev: Event, tx: Repositories) -> Reply | None:
        if ev.from_user == "oUser0001":
            await app_store[0].bindings.get("main", "alice")  # the Store, not tx: NestedTransaction
        return text_reply("ok")

    client = await make_client(aiohttp_client, tmp_path, (misuse, {"event": "CLICK"}))
    app_store.append(client.app[STORE])
    results = await push(client, clicks(3))
    assert [r["reply"] for r in results] == [text_reply("ok"), None, text_reply("ok")]
    record = await client.app[STORE].inbox.get(results[1]["id"])
    assert record is not None and (record.error or "").startswith("NestedTransaction")


# duplicates -------------------------------------------------------------------------------------


async def test_push_same_event_twice_in_one_batch_runs_once_and_answers_duplicate(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.relay.inbox")
    client, runs = await binds_then(aiohttp_client, tmp_path, {})
    twice = event("CLICK", openid="oUser0007")
    results = await push(client, [twice, clicks(1)[0], twice])
    assert [r["status"] for r in results] == ["accepted", "accepted", "duplicate"]
    assert results[2]["reply"] == results[0]["reply"] == text_reply("bound oUser0007")
    assert runs == ["oUser0007", "oUser0000"]
    assert handled_lines(caplog) == [twice["id"], results[1]["id"]]


async def test_push_batch_results_keep_event_order_whatever_each_became(aiohttp_client: Any, tmp_path: Path) -> None:
    client, _ = await binds_then(aiohttp_client, tmp_path, {"oUser0003": ValueError("bug")})
    earlier, new, failing = clicks(4)[1], clicks(4)[2], clicks(4)[3]
    await push(client, [earlier])
    sent = [new, earlier, failing, new, text_message("不相干")]
    results = await push(client, sent)
    assert [r["id"] for r in results] == [e["id"] for e in sent]
    assert [r["status"] for r in results] == ["accepted", "duplicate", "accepted", "duplicate", "accepted"]
    assert results[1]["reply"] == text_reply("bound oUser0001")


# store failure ----------------------------------------------------------------------------------


async def test_push_store_failure_mid_batch_is_503_and_commits_nothing(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.relay.inbox")
    client, _ = await binds_then(aiohttp_client, tmp_path, {"oUser0050": StoreUnavailable("database is locked")})
    sent = clicks(100)
    await push(client, sent, status=503)
    store = client.app[STORE]
    assert await store.inbox.get_many(e["id"] for e in sent) == {}
    assert await store.bindings.list() == []
    assert handled_lines(caplog) == []
    text = await (await client.get("/metrics")).text()
    assert "wxsc_relay_events_total{" not in text


async def test_push_retry_after_a_store_failure_processes_every_event_once(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.relay.inbox")
    fail: dict[str, Exception] = {"oUser0050": StoreUnavailable("database is locked")}
    client, _ = await binds_then(aiohttp_client, tmp_path, fail)
    sent = clicks(100)
    await push(client, sent, status=503)
    fail.clear()
    results = await push(client, sent)
    assert [r["status"] for r in results] == ["accepted"] * 100
    assert len(await client.app[STORE].bindings.list()) == 100
    assert sorted(handled_lines(caplog)) == sorted(e["id"] for e in sent)


# exactly once across retries --------------------------------------------------------------------


async def test_push_batch_sent_again_is_all_duplicates_with_the_same_replies(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.relay.inbox")
    client, runs = await binds_then(aiohttp_client, tmp_path, {"oUser0004": KeyError("bug")})
    sent = clicks(10)
    first = await push(client, sent)
    again = await push(client, sent)  # the acknowledgement was lost: the gateway retries
    assert [r["status"] for r in again] == ["duplicate"] * 10
    assert [r["reply"] for r in again] == [r["reply"] for r in first]
    assert len(runs) == 10
    assert sorted(handled_lines(caplog)) == sorted(e["id"] for e in sent if e is not sent[4])
    text = await (await client.get("/metrics")).text()
    assert 'wxsc_relay_events_total{account="main",status="accepted"} 9.0' in text
    assert 'wxsc_relay_events_total{account="main",status="failed"} 1.0' in text
    assert 'wxsc_relay_events_total{account="main",status="duplicate"} 10.0' in text


async def test_push_event_processed_lines_are_written_after_the_commit(
    aiohttp_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.relay.inbox")
    seen_while_running: list[list[str]] = []

    async def watch(ev: Event, tx: Repositories) -> Reply | None:
        seen_while_running.append(handled_lines(caplog))
        return None

    client = await make_client(aiohttp_client, tmp_path, (watch, {"event": "CLICK"}))
    sent = clicks(3)
    await push(client, sent)
    assert seen_while_running == [[], [], []]
    assert handled_lines(caplog) == [e["id"] for e in sent]


async def test_dispatcher_metrics_count_each_event_once_after_the_commit(store: SqliteStore) -> None:
    metrics = SidecarMetrics()
    dispatcher = Dispatcher(metrics)
    sent = text_message("一")
    await dispatcher.process_batch(store, [sent, sent])
    counted = {
        status: metrics.registry.get_sample_value("wxsc_relay_events_total", {"account": "main", "status": status})
        for status in ("accepted", "duplicate", "failed")
    }
    assert counted == {"accepted": 1.0, "duplicate": 1.0, "failed": None}
