"""The WeChat emulator and the demo (devtools/) are development tools, never part of a deployment.

They accept any secret they are configured with and answer like WeChat, so they must not run
where the tiers run. The tiers never import them (tests/test_split.py); the installed console
scripts and the shipped systemd units start only the gateway and the sidecar.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIER_COMMANDS = re.compile(r"^/opt/wx-notify/venv/bin/wx-(gateway|sidecar) ")


def test_console_scripts_start_only_the_tiers() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"] == {"wx-gateway": "gateway.__main__:main", "wx-sidecar": "sidecar.__main__:main"}


def test_systemd_units_start_only_the_tiers() -> None:
    units = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
    commands = [
        line.split("=", 1)[1].lstrip("-@+!:")
        for unit in units
        for line in unit.read_text(encoding="utf-8").splitlines()
        if re.match(r"^Exec\w*=", line)
    ]
    assert len(units) == 2 and commands
    assert [c for c in commands if not TIER_COMMANDS.match(c) or "devtools" in c] == []
