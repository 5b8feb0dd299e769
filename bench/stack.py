"""The system under test: a real gateway (``python -m gateway``) and the relay sink, as processes.

The gateway runs from a generated ``gateway.toml``, exactly as an operator would start it: JSON
logs at ``info`` (to a file), the spool in ``synchronous=FULL`` WAL on the real disk, the push
relay draining to ``bench.sink`` (or the pull listener). It is pinned to the server core; the
sink shares the load core with wrk and the orchestrator, like a sidecar on another host would
not compete with the gateway for CPU.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

from bench.callbacks import ACCOUNT, APP_ID, ENCODING_AES_KEY, TOKEN
from bench.procs import LOAD_CORE, PYTHON, SERVER_CORE, Proc, Processes, free_port, http_get, wait_http
from bench.sink import SECRET_ENV
from contract import PUSH_PATH, generate_secret

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


@dataclass(frozen=True)
class GatewayOptions:
    mode: str = "push"  # push | pull
    reply_budget_s: float = 3.0  # the account's default: wait this long for a passive reply
    log_level: str = "info"
    backoff_max_s: float = 60.0


@dataclass
class Gateway:
    proc: Proc
    port: int
    pull_port: int
    spool: Path
    startup_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pull_url(self) -> str:
        return f"http://127.0.0.1:{self.pull_port}"


class Stack:
    """A working directory, its processes, and the relay secret the gateway and sink share."""

    def __init__(
        self, workdir: Path, procs: Processes, *, gateway_argv: Sequence[str] = (PYTHON, "-m", "gateway")
    ) -> None:
        self.workdir = workdir
        self.procs = procs
        self.gateway_argv = list(gateway_argv)  # what starts the gateway (a profiler may wrap it)
        self.secret = generate_secret()
        self._count = 0
        self._run = token_hex(3)  # two stacks sharing a workdir never share a spool file

    @property
    def env(self) -> dict[str, str]:
        return {SECRET_ENV: self.secret}

    def _name(self, prefix: str) -> str:
        """A name no other process of this run has (its log, config and spool files use it)."""
        self._count += 1
        return f"{prefix}-{self._count}-{self._run}"

    def start_sink(self, port: int | None = None) -> tuple[Proc, int]:
        port = port or free_port()
        proc = self.procs.start(
            self._name("sink"), [PYTHON, "-m", "bench.sink", "--port", str(port)], core=LOAD_CORE, env=self.env
        )
        wait_http(proc, f"http://127.0.0.1:{port}/healthz")
        return proc, port

    def start_gateway(
        self, options: GatewayOptions, *, sink_port: int | None, spool: Path | None = None, wait_s: float = 120.0
    ) -> Gateway:
        """Write a config and start the gateway pinned to the server core; wait until it answers."""
        name = self._name("gateway")
        port, pull_port = free_port(), free_port()
        spool = spool or self.workdir / f"{name}.sqlite3"
        config = self.workdir / f"{name}.toml"
        config.write_text(self._config(options, port, pull_port, sink_port, spool), encoding="utf-8")
        proc = self.procs.start(name, [*self.gateway_argv, "--config", str(config)], core=SERVER_CORE, env=self.env)
        startup = wait_http(proc, f"http://127.0.0.1:{port}/healthz", timeout_s=wait_s)
        return Gateway(proc, port, pull_port, spool, startup)

    def _config(self, options: GatewayOptions, port: int, pull_port: int, sink_port: int | None, spool: Path) -> str:
        push_url = f'push_url = "http://127.0.0.1:{sink_port}{PUSH_PATH}"' if sink_port else ""
        return f"""\
log_level = "{options.log_level}"

[server]
listen = "127.0.0.1:{port}"

[spool]
path = "{spool}"

[relay]
mode = "{options.mode}"
{push_url}
pull_listen = "127.0.0.1:{pull_port}"
secrets = [{{ env = "{SECRET_ENV}" }}]
backoff_max_s = {options.backoff_max_s}

[[accounts]]
name = "{ACCOUNT}"
kind = "mp"
app_id = "{APP_ID}"
token = "{TOKEN}"
encoding_aes_key = "{ENCODING_AES_KEY}"
max_clock_skew = 3600
reply_budget = {options.reply_budget_s}
"""


def sink_stats(port: int) -> dict[str, float]:
    status, body = http_get(f"http://127.0.0.1:{port}/stats")
    if status != 200:
        raise RuntimeError(f"sink /stats answered {status}")
    return dict(json.loads(body))


def sink_arrivals(port: int) -> dict[str, float]:
    status, body = http_get(f"http://127.0.0.1:{port}/arrivals", timeout_s=30)
    if status != 200:
        raise RuntimeError(f"sink /arrivals answered {status}")
    return dict(json.loads(body))


def gateway_metrics(gateway: Gateway) -> dict[str, float]:
    """The gateway's Prometheus samples summed per metric name and ``outcome`` label."""
    status, body = http_get(gateway.url + "/metrics")
    if status != 200:
        raise RuntimeError(f"gateway /metrics answered {status}")
    totals: dict[str, float] = {}
    for line in body.decode("utf-8").splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.groups()
        outcome = re.search(r'outcome="([^"]*)"', labels or "")
        key = f"{name}:{outcome.group(1)}" if outcome else name
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals
