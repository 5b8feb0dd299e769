"""The chain under trouble: a stalled sidecar, a stalled gateway (WeChat retries), a dead sidecar.

What WeChat must see: an answer within its timeout for every callback the gateway has durably
committed, so no user is shown 该公众号暂时无法提供服务. What the sidecar must see: every event
exactly once, whenever it gets to it — checked in its inbox and binding tables (read-only) and
through the effect (the binding made by a scan).

Timings are WeChat's scaled down so the suite stays quick: WeChat gives up on a callback after
``push_timeout_s`` (5 s for real) and the gateway waits at most ``reply_budget_s`` for a passive
reply (3 s by default), the budget always being the smaller.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devtools.stack_config import MP_ACCOUNT, WECOM_ACCOUNT
from tests.e2e.chain import Chain, ChainFactory, inbox_keys, wait_for

pytestmark = pytest.mark.e2e


async def openid(chain: Chain, name: str) -> str:
    users = {u["name"]: u for u in await chain.emu.users()}
    return str(users[name]["openids"][chain.stack.ids.app_id])


def key_of(push: dict[str, Any]) -> tuple[str, str, str]:
    """The inbox key (see ``inbox_keys``) of the event a push carried."""
    message = push["message"]
    what = message.get("Content") or f"{message.get('Event', '')}:{message.get('EventKey', '')}"
    return (MP_ACCOUNT if push["kind"] == "mp" else WECOM_ACCOUNT, message["FromUserName"], what)


def answered_at_once(push: dict[str, Any]) -> bool:
    """The gateway answered the first attempt with ``success``: WeChat neither retried nor showed anything."""
    attempts = push["attempts"]
    return push["status"] == "acknowledged" and len(attempts) == 1 and attempts[0]["body"] == "success"


@pytest.mark.parametrize("relay_mode", ["push", "pull"])
async def test_chain_sidecar_stalled_scan_answered_in_time_then_bound_once(
    chain_factory: ChainFactory, relay_mode: str
) -> None:
    chain = await chain_factory(relay_mode, reply_budget_s=1.0, push_timeout_s=2.5)
    qr = await chain.qr_for("alice")

    chain.stack.pause("sidecar")
    try:
        push = await chain.emu.scan("alice", qr_url=qr)
        depth_while_stalled = await chain.spool_depth()
        await asyncio.sleep(max(0.0, 3.0 - push["attempts"][-1]["elapsed_s"]))  # longer than WeChat would wait
    finally:
        chain.stack.resume("sidecar")

    assert answered_at_once(push), push["attempts"]
    assert push["attempts"][0]["elapsed_s"] < 2.5
    assert depth_while_stalled == 1  # committed before it was answered, waiting for the sidecar
    await wait_for(lambda: _drained(chain), timeout_s=15, what="the gateway's spool to drain")
    assert inbox_keys(await chain.inbox()) == [key_of(push)]
    assert await chain.bindings() == {(MP_ACCOUNT, "alice"): await openid(chain, "alice")}
    assert await chain.emu.phone("alice") == []  # the late reply is dropped, never a service error


async def test_chain_gateway_stalled_wechat_retries_and_the_event_is_processed_once(
    chain_factory: ChainFactory,
) -> None:
    chain = await chain_factory("push", reply_budget_s=0.5, push_timeout_s=3.0)
    await chain.emu.follow("carol")

    chain.stack.pause("gateway")
    try:
        pending = await chain.emu.text("carol", "磁盘告警收到了吗？", wait=False)

        async def first_attempt_timed_out() -> bool:  # the list holds the attempt in progress too
            return len((await chain.emu.push(pending["id"]))["attempts"]) >= 2

        await wait_for(first_attempt_timed_out, timeout_s=10, what="WeChat's first attempt to time out")
    finally:
        chain.stack.resume("gateway")

    async def push_done() -> bool:
        return str((await chain.emu.push(pending["id"]))["status"]) != "pending"

    await wait_for(push_done, timeout_s=15, what="WeChat's retries to end")
    push = await chain.emu.push(pending["id"])
    assert push["status"] == "acknowledged", push
    assert len(push["attempts"]) >= 2 and push["attempts"][0]["error"], push["attempts"]
    await wait_for(lambda: _drained(chain), timeout_s=15, what="the gateway's spool to drain")
    carol = await openid(chain, "carol")
    assert inbox_keys(await chain.inbox()) == [(MP_ACCOUNT, carol, "subscribe:"), key_of(push)]


@pytest.mark.parametrize("relay_mode", ["push", "pull"])
async def test_chain_sidecar_killed_events_answered_then_each_processed_once_after_restart(
    chain_factory: ChainFactory, relay_mode: str
) -> None:
    chain = await chain_factory(relay_mode, reply_budget_s=0.5, lease_s=3)
    qr = await chain.qr_for("alice")

    await chain.stack.kill("sidecar")
    pushes = [await chain.emu.follow("carol")]
    pushes += await asyncio.gather(*(chain.emu.text("carol", f"第 {i} 条消息") for i in range(1, 4)))
    pushes.append(await chain.emu.scan("alice", qr_url=qr))
    pushes.append(await chain.emu.text("bob", "企业微信里的一条消息", corp=chain.stack.ids.corp_id))
    depth_while_down = await chain.spool_depth()
    await chain.stack.restart("sidecar")

    assert [answered_at_once(p) for p in pushes] == [True] * len(pushes), [p["attempts"] for p in pushes]
    assert depth_while_down == len(pushes)
    await wait_for(lambda: _drained(chain), timeout_s=30, what="the gateway's spool to drain")
    rows = await chain.inbox()
    assert sorted(inbox_keys(rows)) == sorted(key_of(p) for p in pushes)
    assert all(r["processed_at"] is not None and r["error"] is None for r in rows)
    assert await chain.bindings() == {(MP_ACCOUNT, "alice"): await openid(chain, "alice")}
    metrics = await chain.stack.metrics(chain.http, "sidecar")
    assert metrics.value("wxsc_relay_events_total", status="accepted") == len(pushes)


async def _drained(chain: Chain) -> bool:
    return await chain.spool_depth() == 0
