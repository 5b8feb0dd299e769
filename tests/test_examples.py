"""The example configs in deploy/examples/ are valid for both tiers' own loaders and --check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract import generate_secret

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"
ENV = {
    "WX_MAIN_TOKEN": "spamtest",
    "WX_MAIN_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "WX_CORP_TOKEN": "QDG6eK",
    "WX_CORP_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "WX_APP_SECRET": "example-app-secret",
    "WX_CORP_SECRET": "example-corp-secret",
    "BK_PAAS_SECRET": "example-bk-secret",
}


def _localised(tmp_path: Path, name: str) -> Path:
    """The example with its absolute /etc and /var paths moved into tmp_path."""
    secret = tmp_path / "relay.secret"
    secret.write_text(generate_secret() + "\n", encoding="utf-8")
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    for tier in ("wx-gateway", "wx-sidecar"):
        text = text.replace(f"/etc/{tier}/relay.secret", str(secret))
        text = text.replace(f"/var/lib/{tier}/", str(tmp_path) + "/")
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target


@pytest.mark.parametrize(("module", "name"), [("gateway", "gateway.toml"), ("sidecar", "sidecar.toml")])
def test_example_config_passes_check(tmp_path: Path, module: str, name: str) -> None:
    config = _localised(tmp_path, name)
    result = subprocess.run(
        [sys.executable, "-m", module, "--config", str(config), "--check"],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("module", "name"), [("gateway", "gateway.toml"), ("sidecar", "sidecar.toml")])
def test_example_config_without_its_env_names_each_missing_variable(tmp_path: Path, module: str, name: str) -> None:
    config = _localised(tmp_path, name)
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    result = subprocess.run(
        [sys.executable, "-m", module, "--config", str(config), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    wanted = {v for v in ENV if v in (EXAMPLES / name).read_text(encoding="utf-8")}
    for variable in wanted:
        assert f"environment variable {variable} is not set" in result.stderr
    assert "Traceback" not in result.stderr
