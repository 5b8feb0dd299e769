"""Gateway configuration: frozen dataclasses read from ``gateway.toml`` (interfaces.md).

The gateway's config has no place for an AppSecret: it holds the callback Token and
EncodingAESKey (which only authenticate and decrypt what WeChat sends) and the relay secrets.
``tests/gateway/test_split.py`` fails if a key that looks like an app secret appears here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from common.config import Secret, Section, load, parse_listen
from contract import ACCOUNT_KINDS, RELAY_MODES, AccountKind, RelayMode, account_name_problem, secret_problem

AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
URL_RE = re.compile(r"^https?://[^/\s]+")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    shutdown_timeout_s: float = 10.0
    body_timeout_s: float = 15.0  # a request body must be complete this long after its headers
    max_connections: int = 1000  # open connections served at once (at most half the open-file limit)


@dataclass(frozen=True)
class SpoolConfig:
    path: Path
    retention_s: int = 7 * 24 * 3600  # acknowledged events are pruned after this
    dedupe_keep_s: int = 48 * 3600  # dedupe keys outlive WeChat's retry window by far
    commit_window_ms: float = 2.0  # how long a group commit waits for companions


@dataclass(frozen=True)
class RelayConfig:
    mode: RelayMode
    secrets: tuple[Secret, ...]
    push_url: str = ""
    pull_host: str = "127.0.0.1"
    pull_port: int = 8090
    batch_max: int = 100
    timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0
    lease_s: int = 30
    ready_max_lag_s: float = 600.0  # /readyz fails when the oldest unacknowledged event is older


@dataclass(frozen=True)
class AccountConfig:
    name: str
    kind: AccountKind
    app_id: str  # WeCom: the corp id, which is the receiveid trailing every plaintext
    token: Secret
    encoding_aes_key: Secret | None
    require_encryption: bool = False
    max_clock_skew_s: int = 300
    reply_budget_s: float = 3.0
    legacy_path: bool = False


@dataclass(frozen=True)
class GatewayConfig:
    server: ServerConfig
    spool: SpoolConfig
    relay: RelayConfig
    accounts: tuple[AccountConfig, ...]
    log_level: str = "info"
    by_name: dict[str, AccountConfig] = field(default_factory=dict, compare=False, repr=False)

    def account(self, name: str) -> AccountConfig | None:
        return self.by_name.get(name)

    def legacy_account(self) -> AccountConfig | None:
        return next((a for a in self.accounts if a.legacy_path), None)


def load_config(path: Path | str) -> GatewayConfig:
    """Read and validate ``gateway.toml``; raise ``common.config.ConfigError`` listing problems."""
    return load(Path(path), _build)


def _build(root: Section) -> GatewayConfig:
    log_level = root.choice("log_level", LOG_LEVELS, GatewayConfig.log_level)
    server = _server(root.table("server", required=True))
    spool = _spool(root.table("spool", required=True))
    relay = _relay(root.table("relay", required=True))
    accounts = tuple(_account(s) for s in root.tables("accounts", required=True))
    names = [a.name for a in accounts]
    for name in sorted({n for n in names if names.count(n) > 1}):
        root.problems.append(f"accounts: name {name!r} is used twice")
    if root.has("accounts") and not accounts:
        root.problems.append("accounts: at least one [[accounts]] table is required")
    if sum(a.legacy_path for a in accounts) > 1:
        root.problems.append("accounts: legacy_path = true may be set on one account only")
    return GatewayConfig(server, spool, relay, accounts, log_level, {a.name: a for a in accounts})


def _server(s: Section) -> ServerConfig:
    host, port = parse_listen(s, "listen", f"{ServerConfig.host}:{ServerConfig.port}")
    return ServerConfig(
        host=host,
        port=port,
        max_body_bytes=s.integer("max_body_bytes", ServerConfig.max_body_bytes, min=1024, max=4 * 1024 * 1024),
        shutdown_timeout_s=s.number("shutdown_timeout_s", ServerConfig.shutdown_timeout_s, min=0.1, max=120),
        body_timeout_s=s.number("body_timeout_s", ServerConfig.body_timeout_s, min=0.1, max=300),
        max_connections=s.integer("max_connections", ServerConfig.max_connections, min=1, max=1_000_000),
    )


def _spool(s: Section) -> SpoolConfig:
    return SpoolConfig(
        path=s.path("path"),
        retention_s=s.integer("retention_s", SpoolConfig.retention_s, min=0),
        dedupe_keep_s=s.integer("dedupe_keep_s", SpoolConfig.dedupe_keep_s, min=24 * 3600),
        commit_window_ms=s.number("commit_window_ms", SpoolConfig.commit_window_ms, min=0, max=50),
    )


def _relay(s: Section) -> RelayConfig:
    mode = s.choice("mode", RELAY_MODES, "push")
    secrets = s.secret_list("secrets", check=secret_problem)
    push_url = s.text("push_url", RelayConfig.push_url, check=_url_problem)
    if mode == "push" and not push_url and not s.failed("push_url"):
        s.problem("push_url", "is required when mode = \"push\"")
    pull_host, pull_port = parse_listen(s, "pull_listen", f"{RelayConfig.pull_host}:{RelayConfig.pull_port}")
    return RelayConfig(
        mode=mode,
        secrets=tuple(secrets),
        push_url=push_url,
        pull_host=pull_host,
        pull_port=pull_port,
        batch_max=s.integer("batch_max", RelayConfig.batch_max, min=1, max=100),
        timeout_s=s.number("timeout_s", RelayConfig.timeout_s, min=0.1, max=300),
        backoff_initial_s=s.number("backoff_initial_s", RelayConfig.backoff_initial_s, min=0.01, max=60),
        backoff_max_s=s.number("backoff_max_s", RelayConfig.backoff_max_s, min=0.1, max=3600),
        lease_s=s.integer("lease_s", RelayConfig.lease_s, min=1, max=3600),
        ready_max_lag_s=s.number("ready_max_lag_s", RelayConfig.ready_max_lag_s, min=1, max=7 * 24 * 3600),
    )


def _account(s: Section) -> AccountConfig:
    name = s.text("name", check=account_name_problem)
    kind = s.choice("kind", ACCOUNT_KINDS)
    app_id = s.text("app_id")
    token = s.secret("token", check=_token_problem)
    aes_key = s.optional_secret("encoding_aes_key", check=_aes_key_problem)
    require_encryption = s.boolean("require_encryption", AccountConfig.require_encryption)
    if kind == "wecom" and not s.has("encoding_aes_key"):
        s.problem("encoding_aes_key", "is required for WeCom accounts (callbacks are always encrypted)")
    if require_encryption and not s.has("encoding_aes_key"):
        s.problem("encoding_aes_key", "is required when require_encryption = true")
    legacy_path = s.boolean("legacy_path", AccountConfig.legacy_path)
    if legacy_path and kind != "mp":
        s.problem("legacy_path", "is only for MP accounts (BlueKing's mp/callback path)")
    return AccountConfig(
        name=name,
        kind=kind or "mp",
        app_id=app_id,
        token=token,
        encoding_aes_key=aes_key,
        require_encryption=require_encryption,
        max_clock_skew_s=s.integer("max_clock_skew", AccountConfig.max_clock_skew_s, min=0, max=86400),
        reply_budget_s=s.number("reply_budget", AccountConfig.reply_budget_s, min=0, max=4.5),
        legacy_path=legacy_path,
    )


def _url_problem(url: str) -> str | None:
    return None if not url or URL_RE.match(url) else "must be an http:// or https:// URL"


def _token_problem(token: str) -> str | None:
    return None if TOKEN_RE.match(token) else "must be 3-32 letters or digits (WeChat's rule)"


def _aes_key_problem(key: str) -> str | None:
    return None if AES_KEY_RE.match(key) else "must be 43 characters [A-Za-z0-9]"


__all__ = [
    "AccountConfig",
    "GatewayConfig",
    "RelayConfig",
    "ServerConfig",
    "SpoolConfig",
    "load_config",
]
