"""The systemd units in deploy/systemd, checked by systemd's own tools (skipped where absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 is a locked box, 10 an unconfined root service

pytestmark = pytest.mark.e2e


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def installable_copy(unit: str, tmp_path: Path) -> Path:
    """The unit with its ExecStart binaries swapped for /bin/true, which exists everywhere."""
    text = (UNITS / unit).read_text(encoding="utf-8")
    copy = tmp_path / unit
    copy.write_text(re.sub(r"/opt/wx-notify/venv/bin/wx-\w+", "/bin/true", text), encoding="utf-8")
    return copy


@pytest.mark.parametrize("unit", ["wx-gateway.service", "wx-sidecar.service"])
def test_unit_passes_systemd_analyze_verify_without_warnings(unit, tmp_path):
    result = analyze("verify", "--man=no", str(installable_copy(unit, tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.parametrize("unit", ["wx-gateway.service", "wx-sidecar.service"])
def test_unit_exposure_stays_low(unit):
    result = analyze("security", "--offline=yes", "--no-pager", str(UNITS / unit))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE
