"""POST /relay/v1/events over HTTP: signatures, validation, the exactly-once inbox, unsubscribe."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contract import Reply, generate_secret, text_reply
from sidecar.app import create_app
from sidecar.config import load_config
from sidecar.errors import StoreUnavailable
from sidecar.keys import DISPATCHER, STORE
from sidecar.relay.inbox import Event
from sidecar.store import Repositories
from tests.sidecar.helpers import write_config
from tests.sidecar.relayhelp import event, signed, text_message

PATH = "/relay/v1/events"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await make_client(aiohttp_client, tmp_path)


async def make_client(aiohttp_client: Any, tmp_path: Path, *handlers: Any) -> TestClient:
    app = create_app(load_config(write_config(tmp_path)))
    for handler, kwargs in handlers:
        app[DISPATCHER].register(handler, **kwargs)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def push(client: TestClient, *events: Any) -> Any:
    body, headers = signed({"events": list(events)})
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["results"]


# authentication ---------------------------------------------------------------------------------


async def test_push_unsigned_is_401_with_json_reason(client: TestClient) -> None:
    response = await client.post(PATH, json={"events": [event()]})
    assert response.status == 401
    assert "missing webhook-id" in (await response.json())["detail"]


async def test_push_signed_with_another_secret_is_401(client: TestClient) -> None:
    body, headers = signed({"events": [event()]}, secret=generate_secret())
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 401
    assert (await response.json())["detail"] == "no matching signature"


async def test_push_with_stale_timestamp_is_401(client: TestClient) -> None:
    body, headers = signed({"events": [event()]}, clock=lambda: time.time() - 301)
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 401
    assert "window" in (await response.json())["detail"]


async def test_push_replayed_webhook_id_is_401(client: TestClient) -> None:
    body, headers = signed({"events": [event()]})
    assert (await client.post(PATH, data=body, headers=headers)).status == 200
    replay = await client.post(PATH, data=body, headers=headers)
    assert replay.status == 401
    assert "replay" in (await replay.json())["detail"]


async def test_push_tampered_body_is_401(client: TestClient) -> None:
    body, headers = signed({"events": [event()]})
    response = await client.post(PATH, data=body.replace(b"subscribe", b"unsubscribe"), headers=headers)
    assert response.status == 401


# validation -------------------------------------------------------------------------------------


async def test_push_body_not_json_is_400(client: TestClient) -> None:
    body, headers = signed(b"not json")
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 400
    assert "not UTF-8 JSON" in (await response.json())["detail"]


async def test_push_event_whose_id_does_not_match_is_400(client: TestClient) -> None:
    forged = dict(event())
    forged["id"] = "evt_" + "0" * 32
    body, headers = signed({"events": [forged]})
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 400
    assert "does not match" in (await response.json())["detail"]


async def test_push_more_than_100_events_is_400(client: TestClient) -> None:
    body, headers = signed({"events": [event(when=str(i)) for i in range(101)]})
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 400


# the inbox --------------------------------------------------------------------------------------


async def test_push_new_event_is_accepted(client: TestClient) -> None:
    sent = event("unsubscribe")  # a plain subscribe now gets binding's welcome reply
    assert await push(client, sent) == [{"id": sent["id"], "status": "accepted", "reply": None}]


async def test_push_same_event_twice_is_duplicate_with_the_same_reply(aiohttp_client: Any, tmp_path: Path) -> None:
    runs: list[str] = []

    async def echo(ev: Event, tx: Repositories) -> Reply | None:
        runs.append(ev.id)
        return text_reply("收到: " + ev.field("Content"))

    client = await make_client(aiohttp_client, tmp_path, (echo, {"kind": "mp", "msg_type": "text"}))
    message = text_message("你好")
    first = await push(client, message)
    second = await push(client, message)
    assert first == [{"id": message["id"], "status": "accepted", "reply": {"type": "text", "content": "收到: 你好"}}]
    assert second == [{"id": message["id"], "status": "duplicate", "reply": {"type": "text", "content": "收到: 你好"}}]
    assert runs == [message["id"]]


async def test_push_batch_results_keep_the_order_of_events(client: TestClient) -> None:
    events = [event(when=str(i)) for i in range(5)]
    results = await push(client, *events)
    assert [r["id"] for r in results] == [e["id"] for e in events]


async def test_push_unsubscribe_marks_binding_inactive(client: TestClient) -> None:
    store = client.app[STORE]
    await store.bindings.bind("main", "alice", "oAlice001", now=1.0)
    await push(client, event("unsubscribe", openid="oAlice001"))
    binding = await store.bindings.get("main", "alice")
    assert binding is not None and binding.active is False


async def test_push_subscribe_reactivates_an_inactive_binding(client: TestClient) -> None:
    store = client.app[STORE]
    await store.bindings.bind("main", "alice", "oAlice001", now=1.0)
    await push(client, event("unsubscribe", openid="oAlice001"))
    await push(client, event("subscribe", openid="oAlice001", when="1700000100"))
    binding = await store.bindings.get("main", "alice")
    assert binding is not None and binding.active is True


async def test_handler_failure_is_recorded_acknowledged_and_not_rerun(aiohttp_client: Any, tmp_path: Path) -> None:
    runs = 0

    async def broken(ev: Event, tx: Repositories) -> Reply | None:
        nonlocal runs
        runs += 1
        await tx.bindings.bind("main", "bob", ev.from_user, now=ev.now)
        raise KeyError("bug")

    client = await make_client(aiohttp_client, tmp_path, (broken, {"event": "CLICK"}))
    sent = event("CLICK", openid="oBob00001")
    assert (await push(client, sent))[0]["status"] == "accepted"
    assert (await push(client, sent))[0]["status"] == "duplicate"
    assert runs == 1
    store = client.app[STORE]
    record = await store.inbox.get(sent["id"])
    assert record is not None and record.error == "KeyError: 'bug'"
    assert await store.bindings.get("main", "bob") is None  # the failed handler's effects rolled back


async def test_store_failure_answers_503_and_the_retry_is_processed(aiohttp_client: Any, tmp_path: Path) -> None:
    outage = [True]

    async def flaky(ev: Event, tx: Repositories) -> Reply | None:
        await tx.bindings.bind("main", "carol", ev.from_user, now=ev.now)
        if outage[0]:
            raise StoreUnavailable("database is locked")
        return text_reply("ok")

    client = await make_client(aiohttp_client, tmp_path, (flaky, {"event": "CLICK"}))
    sent = event("CLICK", openid="oCarol001")
    body, headers = signed({"events": [sent]})
    response = await client.post(PATH, data=body, headers=headers)
    assert response.status == 503
    store = client.app[STORE]
    assert await store.inbox.get(sent["id"]) is None
    assert await store.bindings.get("main", "carol") is None
    outage[0] = False
    assert await push(client, sent) == [
        {"id": sent["id"], "status": "accepted", "reply": {"type": "text", "content": "ok"}}
    ]
    assert await store.bindings.get("main", "carol") is not None


async def test_event_for_unconfigured_account_is_kept_with_an_error(client: TestClient) -> None:
    sent = event(account="ghost")
    assert (await push(client, sent))[0]["status"] == "accepted"
    record = await client.app[STORE].inbox.get(sent["id"])
    assert record is not None and "not configured" in (record.error or "")


async def test_first_non_empty_reply_wins_and_every_handler_runs(aiohttp_client: Any, tmp_path: Path) -> None:
    ran: list[str] = []

    def handler(name: str, reply: str | None) -> Any:
        async def run(ev: Event, tx: Repositories) -> Reply | None:
            ran.append(name)
            return text_reply(reply) if reply else None

        return run

    client = await make_client(
        aiohttp_client,
        tmp_path,
        (handler("a", None), {"kind": "mp", "msg_type": "event", "event": "SCAN"}),
        (handler("b", "first"), {"msg_type": "event"}),
        (handler("c", "second"), {}),
        (handler("d", "never"), {"kind": "wecom"}),
    )
    results = await push(client, event("SCAN", EventKey="bind_1"))
    assert ran == ["a", "b", "c"]
    assert results[0]["reply"] == {"type": "text", "content": "first"}


async def test_relay_metrics_count_accepted_and_rejected(client: TestClient) -> None:
    await push(client, event())
    await client.post(PATH, json={"events": []})
    text = await (await client.get("/metrics")).text()
    assert 'wxsc_relay_events_total{account="main",status="accepted"} 1.0' in text
    assert 'wxsc_relay_rejections_total{reason="signature"} 1.0' in text
