"""A real Prometheus watching a real stack: the shipped relay-lag alert fires while the sidecar is
down and resolves when it is back, and every query of the Grafana dashboard returns data.

Prometheus scrapes and evaluates every second and loads the shipped rules with each ``for:``
shortened to one second (tests/ops/prom.py ``fast_rules``); the expressions, and so the
thresholds, are the shipped ones. WxRelayLagging's threshold is 60 s of lag, so that test takes
a little over a minute.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import contract
from devtools import dashboard
from devtools.scenario import Scenario, StepFailed
from tests.e2e.chain import wait_for
from tests.ops.conftest import Monitored, MonitoredFactory

pytestmark = pytest.mark.e2e

LAG_ALERT = "WxRelayLagging"
RATE_WINDOW = "5m"  # what Grafana's $__rate_interval stands for in these queries
TEMPLATE_SEND = "/cgi-bin/message/template/send"
ANSWER_TIMEOUT_S = 30.0


async def relay_lag_states(m: Monitored) -> list[str]:
    return await m.prometheus.alert_states(m.http, LAG_ALERT)


@pytest.mark.timeout(300)
async def test_prometheus_relay_lag_alert_fires_while_sidecar_stopped_and_resolves_when_back(
    monitored_factory: MonitoredFactory,
) -> None:
    m = await monitored_factory("push")
    await m.emu.follow("carol")
    assert await relay_lag_states(m) == []

    await m.stack.terminate("sidecar")
    answered = await m.emu.text("carol", "磁盘告警收到了吗？")  # spooled, answered, not relayed

    async def firing() -> bool:
        return await relay_lag_states(m) == ["firing"]

    took = await wait_for(firing, timeout_s=150, what=f"{LAG_ALERT} to fire", interval_s=1.0)
    assert answered["status"] == "acknowledged", answered
    assert took > 55  # the shipped threshold is 60 s of lag

    await m.stack.restart("sidecar")

    async def resolved() -> bool:
        return await relay_lag_states(m) == []

    await wait_for(resolved, timeout_s=30, what=f"{LAG_ALERT} to resolve", interval_s=0.5)
    lag = await m.prometheus.query(m.http, "wxgw_oldest_unacked_age_seconds")
    assert [float(s["value"][1]) for s in lag] == [0.0]


async def produce_every_series(m: Monitored) -> None:
    """The demo's story plus what the dashboard shows of faults: the gateway restarted under the
    pulling sidecar (first: a restart starts the gateway's series afresh), a revoked token, a quota
    error, and forged relay requests to both tiers."""
    await m.stack.terminate("gateway")

    async def pull_failed() -> bool:
        return (await m.stack.metrics(m.http, "sidecar")).value("wxsc_pull_errors_total") > 0

    await wait_for(pull_failed, timeout_s=30, what="the sidecar's lease to fail", interval_s=0.2)
    await m.stack.restart("gateway")
    lines: list[str] = []
    scenario = Scenario(m.stack, m.http, m.emu, say=lines.append)
    await scenario.run()
    assert scenario.ok, "\n".join(lines)
    await m.emu.revoke_tokens(40001)
    await scenario.send_weixin("alice")  # 40001: invalidated, fetched again, sent
    await m.emu.add_fault(TEMPLATE_SEND, "errcode", errcode=45009, times=None)  # every retry too
    with pytest.raises(StepFailed, match="WeChat error 45009"):
        await scenario.send_weixin("alice")
    await m.emu.clear_faults()
    async with m.http.post(m.stack.urls.gateway_pull + contract.LEASE_PATH, data=b"{}") as response:
        assert response.status == 401
    async with m.http.post(m.stack.urls.sidecar + contract.PUSH_PATH, data=b"{}") as response:
        assert response.status == 401


@pytest.mark.timeout(240)
async def test_prometheus_every_dashboard_query_returns_data_after_load(monitored_factory: MonitoredFactory) -> None:
    m = await monitored_factory("pull")
    await produce_every_series(m)
    panels = dashboard.queries(json.loads(dashboard.OUTPUT.read_text(encoding="utf-8")))
    waiting = {f"{title}: {expr}": expr.replace(dashboard.RATE, RATE_WINDOW) for title, expr in panels}

    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while waiting and time.monotonic() < deadline:
        for key, expr in list(waiting.items()):
            if await m.prometheus.query(m.http, expr):
                del waiting[key]
        await asyncio.sleep(1.0)

    assert not waiting, "dashboard queries without data:\n" + "\n".join(waiting)
