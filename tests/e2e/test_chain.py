"""The demo scenario as a test: emulator → nginx (deploy/nginx rules) → gateway → relay → sidecar, push and pull.

The steps are devtools.scenario's, the very code ``make demo`` runs; here they go through a real
nginx, and the test also checks what the scenario only implies: WeChat's callbacks passed nginx,
the sidecar's store holds both bindings, and each phone shows exactly what it should.
"""

from __future__ import annotations

import pytest

from devtools.stack_config import MP_ACCOUNT, WECOM_ACCOUNT
from tests.e2e.chain import ChainFactory

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("relay_mode", ["push", "pull"])
async def test_chain_demo_scenario_every_step_succeeds_through_nginx(
    chain_factory: ChainFactory, relay_mode: str
) -> None:
    chain = await chain_factory(relay_mode)
    lines: list[str] = []

    results = await chain.scenario(lines).run()

    assert [r.ok for r in results] == [True] * 6, "\n".join(lines)
    phones = await chain.emu.phones()
    alice = [(m["channel"], m["text"].splitlines()[0]) for m in phones["alice"]]
    assert alice == [("mp.reply", "绑定成功"), ("mp.template", "告警通知")]
    assert "告警项目: 磁盘空间不足" in phones["alice"][1]["text"]
    assert [m["channel"] for m in phones["bob"]] == ["wecom.message"]
    assert phones["bob"][0]["text"].startswith("磁盘空间不足\n")
    users = {u["name"]: u for u in await chain.emu.users()}
    assert await chain.bindings() == {
        (MP_ACCOUNT, "alice"): users["alice"]["openids"][chain.stack.ids.app_id],
        (WECOM_ACCOUNT, "bob"): "bob",
    }
    log = chain.nginx.read_access_log(min_lines=3)
    assert f"/wechat/{MP_ACCOUNT}/callback" in log and f"/wechat/{WECOM_ACCOUNT}/callback" in log
    assert all(" 200 " in line and " wechat " in line for line in log.splitlines() if "/callback" in line)


async def test_chain_demo_scenario_sidecar_down_verifications_pass_bindings_fail_sends_skipped(
    chain_factory: ChainFactory,
) -> None:
    chain = await chain_factory("push")
    await chain.stack.kill("sidecar")
    lines: list[str] = []
    scenario = chain.scenario(lines)

    results = await scenario.run()

    assert not scenario.ok
    assert [r.ok for r in results] == [True, True, False, False, None, None], "\n".join(lines)
    assert "ClientConnectorError" in results[2].detail  # the binding-link request found nobody listening
    assert results[4].detail == "skipped: needs “alice binds by scanning the QR code (MP, safe mode)”"
