"""Configuration hygiene and response headers (issue 10, finding 12), driven through the CLI and HTTP.

The reviewer's inputs: a secret file left ``0644``; a secret file that is not UTF-8; a URL with a
password and a token in its query under a URL-valued key; answers carrying access tokens, QR
scenes and WeCom login states; and the ``Server`` header of both tiers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from common.headers import SERVER_HEADER
from contract import generate_secret
from gateway.app import create_app as create_gateway
from gateway.config import load_config as load_gateway
from gateway.metrics import GatewayMetrics
from gateway.relay.pull import PullRelay
from sidecar.app import create_app as create_sidecar
from sidecar.config import load_config as load_sidecar
from tests.sidecar.binding.conftest import CONSOLE, Rig, RigFactory, make_rig  # noqa: F401 - fixture
from tests.sidecar.helpers import CLIENT_SECRET
from tests.sidecar.helpers import write_config as write_sidecar_config

ROOT = Path(__file__).resolve().parents[2]
SECRET_VALUE = "SecretTokenValue42"
GATEWAY_ACCOUNT = """
[[accounts]]
name = "main"
kind = "mp"
app_id = "wx0000000000000001"
token = { file = "token.secret" }
"""


def gateway_config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[server]\nlisten = "127.0.0.1:0"\n[spool]\npath = "spool.sqlite3"\n'
        f'[relay]\nmode = "pull"\npull_listen = "127.0.0.1:0"\nsecrets = ["{generate_secret()}"]\n'
        + GATEWAY_ACCOUNT,
        encoding="utf-8",
    )
    return path


def sidecar_config(tmp_path: Path) -> Path:
    mp = GATEWAY_ACCOUNT.replace("token = ", "template_id = \"tmpl-1\"\napp_secret = ")
    return write_sidecar_config(tmp_path, replace={"mp": mp}, drop=("wecom",))


CONFIGS = {"gateway": gateway_config, "sidecar": sidecar_config}
SECRET_KEYS = {"gateway": "accounts[0].token", "sidecar": "accounts[0].app_secret"}


def write_secret(tmp_path: Path, data: bytes, mode: int) -> None:
    secret = tmp_path / "token.secret"
    secret.write_bytes(data)
    secret.chmod(mode)


def check(tier: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", tier, "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


# secret files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["gateway", "sidecar"])
def test_check_with_a_secret_file_of_mode_0644_warns_and_passes(tier: str, tmp_path: Path) -> None:
    config = CONFIGS[tier](tmp_path)
    write_secret(tmp_path, SECRET_VALUE.encode(), 0o644)
    done = check(tier, config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert f"warning: {SECRET_KEYS[tier]}: secret file" in done.stderr
    assert "readable by group or others (mode 0644)" in done.stderr
    assert SECRET_VALUE not in done.stderr


@pytest.mark.parametrize("tier", ["gateway", "sidecar"])
def test_check_with_a_secret_file_of_mode_0600_says_only_ok(tier: str, tmp_path: Path) -> None:
    config = CONFIGS[tier](tmp_path)
    write_secret(tmp_path, SECRET_VALUE.encode(), 0o600)
    done = check(tier, config)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


@pytest.mark.parametrize("tier", ["gateway", "sidecar"])
def test_start_with_a_secret_file_of_mode_0644_logs_a_warning(tier: str, tmp_path: Path) -> None:
    config = CONFIGS[tier](tmp_path)
    write_secret(tmp_path, SECRET_VALUE.encode(), 0o644)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", tier, "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert '"msg": "secret file is not private"' in first
    assert "mode 0644" in first and SECRET_VALUE not in first


@pytest.mark.parametrize("tier", ["gateway", "sidecar"])
def test_check_with_a_secret_file_that_is_not_utf8_exits_2_naming_the_key(tier: str, tmp_path: Path) -> None:
    config = CONFIGS[tier](tmp_path)
    write_secret(tmp_path, b"\xff\xfeSecret\xc3(", 0o600)
    done = check(tier, config)
    assert done.returncode == 2
    expected = f"{SECRET_KEYS[tier]}: secret file {tmp_path / 'token.secret'} is not UTF-8 text"
    assert done.stderr.splitlines() == [expected]


def test_check_with_a_password_and_a_token_in_a_url_masks_both(tmp_path: Path) -> None:
    url = "ftp://admin:hunter2@gw.example.com:8090/relay?token=s3cr3t-t0ken#frag"
    relay = f'[relay]\nmode = "pull"\npull_url = "{url}"\nsecrets = ["{generate_secret()}"]\n'
    config = write_sidecar_config(tmp_path, replace={"relay": relay})
    done = check("sidecar", config)
    assert done.returncode == 2
    assert "relay.pull_url: must be an http:// or https:// URL (got 'ftp://***@gw.example.com:8090/relay?***')" in (
        done.stderr.splitlines()
    )
    assert "hunter2" not in done.stderr and "s3cr3t" not in done.stderr and "admin" not in done.stderr


# answers carrying credentials -------------------------------------------------------------------


async def test_token_answers_say_no_store(make_rig: RigFactory) -> None:  # noqa: F811 - fixture
    rig = await make_rig()
    auth = {"bk_app_code": "bk_paas", "bk_app_secret": CLIENT_SECRET}
    read = await rig.client.get("/api/c/compapi/weixin/get_token/", params=auth)
    refreshed = await rig.client.post("/api/v1/tokens/main/refresh", json=auth)
    for response in (read, refreshed):
        body = await response.json()
        assert body["result"] is True and body["data"]["access_token"]
        assert response.headers["Cache-Control"] == "no-store"


async def test_qr_scene_and_wecom_login_state_answers_say_no_store(make_rig: RigFactory) -> None:  # noqa: F811
    rig = await make_rig()
    await rig.sign_in("alice")
    qr = await rig.client.get(CONSOLE + "mp/get_qrcode/")
    await rig.sign_in("bob", account="corp")
    login = await rig.client.get(CONSOLE + "qy/get_login_url/")
    for response in (qr, login):
        body = await response.json()
        assert response.status == 200 and body["result"] is True, body
        assert response.headers["Cache-Control"] == "no-store"


# the Server header ------------------------------------------------------------------------------


async def served_by(app: Any) -> str:
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/healthz")
        missing = await client.get("/no-such-path")
        assert response.headers["Server"] == missing.headers["Server"]
        return str(response.headers["Server"])


async def test_gateway_server_header_names_no_version(tmp_path: Path) -> None:
    write_secret(tmp_path, SECRET_VALUE.encode(), 0o600)
    assert await served_by(create_gateway(load_gateway(gateway_config(tmp_path)))) == SERVER_HEADER


async def test_gateway_pull_listener_server_header_names_no_version(tmp_path: Path) -> None:
    write_secret(tmp_path, SECRET_VALUE.encode(), 0o600)
    config = load_gateway(gateway_config(tmp_path)).relay
    relay = PullRelay(config, spool=None, metrics=GatewayMetrics())  # type: ignore[arg-type] # refused before the spool
    async with TestClient(TestServer(relay.build_app())) as client:
        response = await client.post("/relay/v1/lease", data=b"{}")
        assert response.status == 401
        assert response.headers["Server"] == SERVER_HEADER


async def test_sidecar_server_header_names_no_version(tmp_path: Path) -> None:
    write_secret(tmp_path, SECRET_VALUE.encode(), 0o600)
    assert await served_by(create_sidecar(load_sidecar(sidecar_config(tmp_path)))) == SERVER_HEADER

