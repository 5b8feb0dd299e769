"""devtools.stack, the launcher behind the demo, the chain suite and the chaos harness.

Its generated configs must be what each tier accepts (their own loaders judge them), secrets
must stay in private files, and a tier that cannot start must not leave the others running.
"""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from devtools.emulator.config import load_config as load_emulator_config
from devtools.stack import Stack, TierError
from devtools.stack_config import Identities, Ports, RelayMode, StackOptions, write_configs
from gateway.config import load_config as load_gateway_config
from sidecar.config import MpAccount, WecomAccount
from sidecar.config import load_config as load_sidecar_config


@pytest.mark.parametrize("relay_mode", ["push", "pull"])
def test_stack_configs_each_tier_loads_its_generated_config(tmp_path: Path, relay_mode: RelayMode) -> None:
    ids, ports = Identities(), Ports()
    options = StackOptions(relay_mode=relay_mode, callback_base="http://127.0.0.1:1")

    paths = write_configs(tmp_path, ids, ports, options)

    gateway = load_gateway_config(paths["gateway"])
    sidecar = load_sidecar_config(paths["sidecar"])
    emulator = load_emulator_config(paths["emulator"])
    assert gateway.relay.mode == sidecar.relay.mode == relay_mode
    assert gateway.relay.secrets[0].reveal() == sidecar.relay.secrets[0].reveal() == ids.vault["relay_secret"]
    assert sidecar.wechat.mp_api == sidecar.wechat.wecom_api == f"http://127.0.0.1:{ports.emulator}"
    mp, wecom = sidecar.accounts
    assert isinstance(mp, MpAccount) and mp.app_secret.reveal() == emulator.mp_apps[0].secret
    assert isinstance(wecom, WecomAccount) and wecom.corp_secret.reveal() == emulator.wecom_corps[0].agents[0].secret
    gateway_mp = gateway.account("main")
    assert gateway_mp is not None and gateway_mp.token.reveal() == emulator.mp_apps[0].token
    assert emulator.mp_apps[0].callback_url == "http://127.0.0.1:1/wechat/main/callback"


def test_stack_configs_secrets_live_in_private_files_only(tmp_path: Path) -> None:
    ids = Identities()

    write_configs(tmp_path, ids, Ports(), StackOptions())

    configs = "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("*.toml"))
    for name, value in ids.vault.items():
        assert value not in configs, name
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o600
    assert value not in repr(ids)


@pytest.mark.e2e
async def test_stack_tier_that_cannot_start_stops_the_others_and_shows_its_log(tmp_path: Path) -> None:
    stack = Stack(tmp_path, ready_timeout_s=30)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", stack.ports.sidecar))
        taken.listen()

        with pytest.raises(TierError, match=r"sidecar exited with \d+(.|\n)*last lines of .*sidecar\.log"):
            await stack.start()

    assert [tier.running for tier in stack.tiers.values()] == [False, False, False]


@pytest.mark.e2e
async def test_stack_restart_after_kill_serves_again_on_the_same_port(tmp_path: Path) -> None:
    async with Stack(tmp_path) as stack, aiohttp.ClientSession() as http:
        await stack.kill("sidecar")
        killed = stack.tiers["sidecar"].process
        assert killed is not None and killed.returncode == -9

        await stack.restart("sidecar")

        async with http.get(f"{stack.urls.sidecar}/readyz") as response:
            assert response.status == 200
        assert stack.tiers["sidecar"].starts == 2
