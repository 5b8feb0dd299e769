"""The shipped Prometheus files, the Prometheus binaries, and a real Prometheus on loopback.

Tests skip only when Debian's ``prometheus`` package (``prometheus`` and ``promtool``) is not
installed; CI installs it (.ci/run).

:class:`PrometheusServer` runs ``prometheus`` with its own config and data directory in a temp
folder, on a free loopback port, scraping and evaluating every second. The rules it loads are
:func:`fast_rules`: the shipped file with every ``for:`` shortened to one second and every
expression untouched, so a test sees the shipped alerts fire in seconds instead of minutes.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devtools.stack_config import free_port

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "wx-notify.rules.yml"
EXAMPLE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.example.yml"
RULE_TESTS = REPO / "tests" / "ops" / "rules"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"
FAST_FOR = "1s"
READY_TIMEOUT_S = 30.0


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``, or skip the calling test when it is absent."""
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/local/bin")
    if found is None:
        pytest.skip(f"{name} is not installed (CI installs it: apt-get install prometheus)")
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; its output is kept for the assertion message."""
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False)


def load_rules(path: Path = RULES) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def alerts(rules: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every alerting rule of the shipped file, in file order."""
    document = rules if rules is not None else load_rules()
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def fast_rules(rules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shipped rules with every ``for:`` set to one second; expressions are not touched."""
    document = rules if rules is not None else load_rules()
    groups = []
    for group in document["groups"]:
        shortened = [{**rule, "for": FAST_FOR} if "alert" in rule else dict(rule) for rule in group["rules"]]
        groups.append({**group, "rules": shortened})
    return {**document, "groups": groups}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes for a document's headings (lowercase, punctuation dropped, - for spaces)."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


class PrometheusServer:
    """A real Prometheus scraping ``targets`` (job name -> host:port) every second, with fast rules."""

    def __init__(self, workdir: Path, targets: Mapping[str, Sequence[str]]) -> None:
        self.workdir = workdir
        self.targets = targets
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    def __repr__(self) -> str:
        return f"PrometheusServer({self.url})"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules = self.workdir / "rules.yml"
        rules.write_text(yaml.safe_dump(fast_rules(), sort_keys=False), encoding="utf-8")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(hosts)}]} for job, hosts in self.targets.items()
            ],
        }
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    async def start(self) -> None:
        config = self.write_config()
        argv = [
            binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        await self._wait_ready()

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)

    async def __aenter__(self) -> PrometheusServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"prometheus exited: {self.log_path.read_text(errors='replace')[-2000:]}")
                try:
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"prometheus not ready within {READY_TIMEOUT_S:.0f} s")

    async def api(self, session: aiohttp.ClientSession, path: str, **params: str) -> Any:
        async with session.get(f"{self.url}/api/v1/{path}", params=params) as response:
            body = await response.json()
        assert body.get("status") == "success", body
        return body["data"]

    async def query(self, session: aiohttp.ClientSession, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        data = await self.api(session, "query", query=expr)
        result = data["result"]
        return result if data["resultType"] == "vector" else [{"value": result}]

    async def alert_states(self, session: aiohttp.ClientSession, name: str) -> list[str]:
        """The states (pending, firing) of the active alerts named ``name``; [] when none is active."""
        data = await self.api(session, "alerts")
        return [a["state"] for a in data["alerts"] if a["labels"].get("alertname") == name]

    async def targets_up(self, session: aiohttp.ClientSession) -> bool:
        data = await self.api(session, "targets")
        active = data["activeTargets"]
        return len(active) == sum(len(h) for h in self.targets.values()) and all(t["health"] == "up" for t in active)
