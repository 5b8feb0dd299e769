"""Sidecar configuration: frozen dataclasses read from ``sidecar.toml`` (interfaces.md).

Only this tier holds AppSecrets, so every secret is a :class:`common.config.Secret` (literal,
``{ env = "VAR" }`` or ``{ file = "path" }``) and never appears in a repr. Unknown keys fail.

Template field mapping (MP accounts, ``template_fields``)
    WeChat stopped showing ``first`` and ``remark`` on 2023-05-04 and truncates each field (20
    characters for ``thing``). BlueKing's historical layout (first/keyword1/keyword2/remark)
    therefore shows only the message and the date today. The default mapping, preset
    ``"default"``, suits templates picked from today's library::

        template_fields = { thing1 = "heading", thing2 = "message", time3 = "date" }

    Write your own table when your template's keys differ (the keys are shown in the MP admin
    console next to the template); the values are BlueKing message fields: ``heading``,
    ``message``, ``date``, ``remark``. ``template_fields = "bk_legacy"`` selects BlueKing's own
    mapping ``{first = "heading", keyword1 = "message", keyword2 = "date", remark = "remark"}``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from common.config import Network, Secret, Section, load, mask_url, parse_listen, parse_networks
from contract import ACCOUNT_KINDS, RELAY_MODES, AccountKind, RelayMode, account_name_problem, secret_problem

TokenMode = Literal["stable", "classic"]
Identity = Literal["link", "bk_login", "header"]
WecomLogin = Literal["qrconnect", "wwlogin"]

TOKEN_MODES: tuple[TokenMode, ...] = ("stable", "classic")
IDENTITIES: tuple[Identity, ...] = ("link", "bk_login", "header")
WECOM_LOGINS: tuple[WecomLogin, ...] = ("qrconnect", "wwlogin")
LOG_LEVELS = ("debug", "info", "warning", "error")

APP_CODE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
TEMPLATE_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
HEADER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
URL_RE = re.compile(r"^https?://[^/\s]+")
BK_FIELDS: tuple[str, ...] = ("heading", "message", "date", "remark")

TEMPLATE_PRESETS: dict[str, tuple[tuple[str, str], ...]] = {
    "default": (("thing1", "heading"), ("thing2", "message"), ("time3", "date")),
    "bk_legacy": (("first", "heading"), ("keyword1", "message"), ("keyword2", "date"), ("remark", "remark")),
}


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    public_url: str = "http://127.0.0.1:8081"  # base of redirect URIs and links shown to users
    max_body_bytes: int = 1024 * 1024
    shutdown_timeout_s: float = 10.0
    body_timeout_s: float = 15.0  # a request body must be complete this long after its headers
    max_connections: int = 1000  # open connections served at once (at most half the open-file limit)


StoreBackend = Literal["sqlite", "postgresql"]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class StoreConfig:
    """Where the sidecar keeps its state: one SQLite file, or a PostgreSQL database.

    ``url`` is a Secret because a PostgreSQL URL may carry a password; it is revealed only to
    the driver. The pool keys apply to PostgreSQL, ``busy_timeout_s`` to SQLite.
    """

    url: Secret
    path: Path  # the SQLite file the url names, resolved against the config file's folder
    backend: StoreBackend = "sqlite"
    busy_timeout_s: float = 5.0
    inbox_retention_s: int = 7 * 24 * 3600  # processed relay events are kept this long
    pool_min_size: int = 1  # connections each sidecar keeps open to PostgreSQL
    pool_max_size: int = 10  # and never more than this
    acquire_timeout_s: float = 5.0  # a call waits this long for a free connection, then 503
    connect_timeout_s: float = 5.0  # a new connection must be up within this
    statement_timeout_s: float = 30.0  # the server cancels a statement running longer


@dataclass(frozen=True)
class RelayConfig:
    mode: RelayMode
    secrets: tuple[Secret, ...]
    pull_url: str = ""
    timeout_s: float = 10.0
    lease_wait_s: int = 25  # long-poll wait asked of the gateway
    lease_max: int = 100
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass(frozen=True)
class WeChatConfig:
    mp_api: str = "https://api.weixin.qq.com"
    wecom_api: str = "https://qyapi.weixin.qq.com"
    timeout_s: float = 10.0  # every outbound call; intranets reach WeChat through HTTPS_PROXY
    retry_attempts: int = 3  # bounded tries for -1/45009/network errors on repeat-safe calls
    retry_backoff_s: float = 0.5  # first backoff; doubles per try, full jitter (common.retry)
    token_margin_s: int = 300  # refresh this long before expiry (WeChat's old/new overlap is 5 min)
    send_concurrency: int = 8  # concurrent template sends per request


@dataclass(frozen=True)
class MpAccount:
    name: str
    app_id: str
    app_secret: Secret
    template_id: str
    token_mode: TokenMode = "stable"  # noqa: S105 - a mode name, not a secret
    template_fields: tuple[tuple[str, str], ...] = TEMPLATE_PRESETS["default"]
    default: bool = False
    kind: Literal["mp"] = "mp"

    @property
    def token_key(self) -> str:
        """The TokenStore key: one token per app id, shared by every account naming it."""
        return f"mp:{self.app_id}"

    def fields(self) -> dict[str, str]:
        """Template key → BlueKing field (heading, message, date, remark)."""
        return dict(self.template_fields)


@dataclass(frozen=True)
class WecomAccount:
    name: str
    corp_id: str
    corp_secret: Secret
    agent_id: int
    default: bool = False
    kind: Literal["wecom"] = "wecom"

    @property
    def token_key(self) -> str:
        """WeCom issues one token per (corp id, secret); the secret enters only as a short hash."""
        digest = hashlib.sha256(self.corp_secret.reveal().encode("utf-8")).hexdigest()[:16]
        return f"wecom:{self.corp_id}:{digest}"


AccountConfig = MpAccount | WecomAccount


@dataclass(frozen=True)
class ClientConfig:
    """An intranet caller of the send API (a BlueKing app code and its secret)."""

    app_code: str
    app_secret: Secret
    may_get_token: bool = False  # may read access tokens (central-control endpoint)
    may_refresh_token: bool = False  # may force a token refresh


@dataclass(frozen=True)
class BindingConfig:
    enabled: bool = True
    identity: Identity = "link"
    bk_login_url: str = ""
    user_header: str = "X-Remote-User"
    trusted_proxies: tuple[Network, ...] = ()
    qr_ttl_s: int = 600
    link_ttl_s: int = 600
    wecom_login: WecomLogin = "qrconnect"


@dataclass(frozen=True)
class AuditConfig:
    store_bodies: bool = False
    retention_s: int = 90 * 24 * 3600  # 0 keeps audit records forever


@dataclass(frozen=True)
class SidecarConfig:
    server: ServerConfig
    store: StoreConfig
    relay: RelayConfig
    wechat: WeChatConfig
    accounts: tuple[AccountConfig, ...]
    clients: tuple[ClientConfig, ...] = ()
    binding: BindingConfig = BindingConfig()
    audit: AuditConfig = AuditConfig()
    log_level: str = "info"
    by_name: dict[str, AccountConfig] = field(default_factory=dict, compare=False, repr=False)

    def account(self, name: str) -> AccountConfig | None:
        return self.by_name.get(name)

    def default_account(self) -> AccountConfig:
        """The account behind the BlueKing-compatible paths (validated to exist)."""
        return next((a for a in self.accounts if a.default), self.accounts[0])

    def default_of_kind(self, kind: AccountKind) -> AccountConfig | None:
        """The default account if it is of ``kind``, else the first account of ``kind``.

        ``send_mp_weixin`` and ``send_qy_weixin`` name a kind, not an account.
        """
        default = self.default_account()
        if default.kind == kind:
            return default
        return next((a for a in self.accounts if a.kind == kind), None)

    def client(self, app_code: str) -> ClientConfig | None:
        return next((c for c in self.clients if c.app_code == app_code), None)


def load_config(path: Path | str) -> SidecarConfig:
    """Read and validate ``sidecar.toml``; raise ``common.config.ConfigError`` listing problems."""
    return load(Path(path), _build)


def _build(root: Section) -> SidecarConfig:
    log_level = root.choice("log_level", LOG_LEVELS, SidecarConfig.log_level)
    server = _server(root.table("server", required=True))
    store = _store(root.table("store", required=True))
    relay = _relay(root.table("relay", required=True))
    wechat = _wechat(root.table("wechat"))
    sections = root.tables("accounts", required=True)
    accounts = tuple(a for a in (_account(s) for s in sections) if a)
    clients = tuple(_client(s) for s in root.tables("clients"))
    binding = _binding(root.table("binding"))
    audit = _audit(root.table("audit"))
    if root.has("accounts") and not sections:
        root.problems.append("accounts: at least one [[accounts]] table is required")
    _check_accounts(root, accounts)
    codes = [c.app_code for c in clients]
    for code in sorted({c for c in codes if codes.count(c) > 1}):
        root.problems.append(f"clients: app_code {code!r} is used twice")
    return SidecarConfig(
        server, store, relay, wechat, accounts, clients, binding, audit, log_level, {a.name: a for a in accounts}
    )


def _check_accounts(root: Section, accounts: tuple[AccountConfig, ...]) -> None:
    names = [a.name for a in accounts]
    for name in sorted({n for n in names if names.count(n) > 1}):
        root.problems.append(f"accounts: name {name!r} is used twice")
    defaults = [a.name for a in accounts if a.default]
    if len(accounts) > 1 and len(defaults) != 1:
        found = ", ".join(defaults) if defaults else "none"
        root.problems.append(f"accounts: exactly one account must set default = true (found: {found})")


def _url(s: Section, name: str, default: str) -> str:
    return s.text(name, default, check=_url_problem).rstrip("/")


def _url_problem(url: str) -> str | None:
    return None if not url or URL_RE.match(url) else f"must be an http:// or https:// URL (got {mask_url(url)!r})"


def _server(s: Section) -> ServerConfig:
    host, port = parse_listen(s, "listen", f"{ServerConfig.host}:{ServerConfig.port}")
    shown = f"[{host}]" if ":" in host else host
    return ServerConfig(
        host=host,
        port=port,
        public_url=_url(s, "public_url", f"http://{shown}:{port}"),
        max_body_bytes=s.integer("max_body_bytes", ServerConfig.max_body_bytes, min=1024, max=64 * 1024 * 1024),
        shutdown_timeout_s=s.number("shutdown_timeout_s", ServerConfig.shutdown_timeout_s, min=0.1, max=120),
        body_timeout_s=s.number("body_timeout_s", ServerConfig.body_timeout_s, min=0.1, max=300),
        max_connections=s.integer("max_connections", ServerConfig.max_connections, min=1, max=1_000_000),
    )


def _store(s: Section) -> StoreConfig:
    raw = s.secret("url")
    url = raw if isinstance(raw, Secret) else None
    backend, path = _store_location(s, url)
    pool_min = s.integer("pool_min_size", StoreConfig.pool_min_size, min=0, max=100)
    pool_max = s.integer("pool_max_size", StoreConfig.pool_max_size, min=1, max=100)
    if isinstance(pool_min, int) and isinstance(pool_max, int) and pool_min > pool_max:
        s.problem("pool_min_size", f"must not exceed pool_max_size ({pool_max})")
    return StoreConfig(
        url=url or Secret(""),
        path=path,
        backend=backend,
        busy_timeout_s=s.number("busy_timeout_s", StoreConfig.busy_timeout_s, min=0.1, max=120),
        inbox_retention_s=s.integer("inbox_retention_s", StoreConfig.inbox_retention_s, min=3600),
        pool_min_size=pool_min,
        pool_max_size=pool_max,
        acquire_timeout_s=s.number("acquire_timeout_s", StoreConfig.acquire_timeout_s, min=0.1, max=120),
        connect_timeout_s=s.number("connect_timeout_s", StoreConfig.connect_timeout_s, min=1, max=120),
        statement_timeout_s=s.number("statement_timeout_s", StoreConfig.statement_timeout_s, min=0.1, max=3600),
    )


def _store_location(s: Section, url: Secret | None) -> tuple[StoreBackend, Path]:
    """The backend a store URL names, and the SQLite file (``Path()`` for PostgreSQL).

    Problems never quote the URL: a PostgreSQL URL may carry a password.
    """
    if url is None:
        return "sqlite", Path()
    value = url.reveal()
    if value.startswith(POSTGRES_SCHEMES):
        return "postgresql", Path()
    scheme, sep, rest = value.partition(":///")
    if not sep or scheme != "sqlite" or not rest:
        s.problem(
            "url",
            'must be "sqlite:///relative/path", "sqlite:////absolute/path" or "postgresql://user@host:5432/db"',
        )
        return "sqlite", Path()
    return "sqlite", s.base_dir / rest  # an absolute rest ("/abs") replaces the base


def _relay(s: Section) -> RelayConfig:
    mode = s.choice("mode", RELAY_MODES, "push")
    secrets = s.secret_list("secrets", check=secret_problem)
    pull_url = _url(s, "pull_url", RelayConfig.pull_url)
    if mode == "pull" and not pull_url and not s.failed("pull_url"):
        s.problem("pull_url", 'is required when mode = "pull"')
    return RelayConfig(
        mode=mode,
        secrets=tuple(secrets),
        pull_url=pull_url,
        timeout_s=s.number("timeout_s", RelayConfig.timeout_s, min=0.1, max=300),
        lease_wait_s=s.integer("lease_wait_s", RelayConfig.lease_wait_s, min=0, max=60),
        lease_max=s.integer("lease_max", RelayConfig.lease_max, min=1, max=100),
        backoff_initial_s=s.number("backoff_initial_s", RelayConfig.backoff_initial_s, min=0.01, max=60),
        backoff_max_s=s.number("backoff_max_s", RelayConfig.backoff_max_s, min=0.1, max=3600),
    )


def _wechat(s: Section) -> WeChatConfig:
    return WeChatConfig(
        mp_api=_url(s, "mp_api", WeChatConfig.mp_api),
        wecom_api=_url(s, "wecom_api", WeChatConfig.wecom_api),
        timeout_s=s.number("timeout_s", WeChatConfig.timeout_s, min=0.1, max=120),
        retry_attempts=s.integer("retry_attempts", WeChatConfig.retry_attempts, min=1, max=10),
        retry_backoff_s=s.number("retry_backoff_s", WeChatConfig.retry_backoff_s, min=0.0, max=30),
        token_margin_s=s.integer("token_margin_s", WeChatConfig.token_margin_s, min=30, max=3600),
        send_concurrency=s.integer("send_concurrency", WeChatConfig.send_concurrency, min=1, max=64),
    )


def _account(s: Section) -> AccountConfig | None:
    name = s.text("name", check=account_name_problem)
    kind = s.choice("kind", ACCOUNT_KINDS)
    default = s.boolean("default", False)
    if kind is None:
        s.waive_unknown_keys()  # the kind decides which keys exist; judge them once it is fixed
        return None
    account = _mp_account(s, name, default) if kind == "mp" else _wecom_account(s, name, default)
    return account if name else None  # a bad name was reported; "" would only add noise


def _mp_account(s: Section, name: str, default: bool) -> MpAccount:
    return MpAccount(
        name=name,
        app_id=s.text("app_id"),
        app_secret=s.secret("app_secret"),
        template_id=s.text("template_id", check=_template_id_problem),
        token_mode=s.choice("token_mode", TOKEN_MODES, MpAccount.token_mode),
        template_fields=_template_fields(s),
        default=default,
    )


def _template_id_problem(template_id: str) -> str | None:
    return None if template_id else "is empty"


def _template_fields(s: Section) -> tuple[tuple[str, str], ...]:
    name = "template_fields"
    if not s.has(name):
        return MpAccount.template_fields
    raw = s.value(name, (str, dict), "a preset name or a table of template key = BlueKing field")
    if isinstance(raw, str):
        if raw not in TEMPLATE_PRESETS:
            s.problem(name, f"unknown preset {raw!r} (presets: {', '.join(TEMPLATE_PRESETS)})")
            return MpAccount.template_fields
        return TEMPLATE_PRESETS[raw]
    if not isinstance(raw, dict) or not raw:
        if raw is not None:
            s.problem(name, "must name at least one template key")
        return MpAccount.template_fields
    pairs: list[tuple[str, str]] = []
    for key, source in raw.items():
        if not TEMPLATE_KEY_RE.match(key):
            s.problem(f"{name}.{key}", "is not a template key (a letter, then letters, digits or _)")
        elif source not in BK_FIELDS:
            s.problem(f"{name}.{key}", f"must be one of {', '.join(BK_FIELDS)} (got {source!r})")
        else:
            pairs.append((key, source))
    if pairs and not {"heading", "message"} & {src for _, src in pairs}:
        s.problem(name, "must map heading or message to some template key")
    return tuple(pairs)


def _wecom_account(s: Section, name: str, default: bool) -> WecomAccount:
    return WecomAccount(
        name=name,
        corp_id=s.text("corp_id"),
        corp_secret=s.secret("corp_secret"),
        agent_id=s.integer("agent_id", min=0),
        default=default,
    )


def _client(s: Section) -> ClientConfig:
    return ClientConfig(
        app_code=s.text("app_code", check=_app_code_problem),
        app_secret=s.secret("app_secret"),
        may_get_token=s.boolean("may_get_token", ClientConfig.may_get_token),
        may_refresh_token=s.boolean("may_refresh_token", ClientConfig.may_refresh_token),
    )


def _app_code_problem(app_code: str) -> str | None:
    return None if APP_CODE_RE.match(app_code) else "must be 1-64 characters of letters, digits, _ . or -"


def _header_problem(header: str) -> str | None:
    return None if HEADER_RE.match(header) else "must be an HTTP header name"


def _binding(s: Section) -> BindingConfig:
    identity = s.choice("identity", IDENTITIES, BindingConfig.identity)
    bk_login_url = _url(s, "bk_login_url", BindingConfig.bk_login_url)
    if identity == "bk_login" and not bk_login_url and not s.failed("bk_login_url"):
        s.problem("bk_login_url", 'is required when identity = "bk_login"')
    user_header = s.text("user_header", BindingConfig.user_header, check=_header_problem)
    proxies = parse_networks(s, "trusted_proxies", [])
    if identity == "header" and not proxies and not s.has("trusted_proxies"):
        s.problem("trusted_proxies", 'is required when identity = "header" (only these peers may set the header)')
    return BindingConfig(
        enabled=s.boolean("enabled", BindingConfig.enabled),
        identity=identity,
        bk_login_url=bk_login_url,
        user_header=user_header,
        trusted_proxies=tuple(proxies),
        qr_ttl_s=s.integer("qr_ttl_s", BindingConfig.qr_ttl_s, min=60, max=2_592_000),
        link_ttl_s=s.integer("link_ttl_s", BindingConfig.link_ttl_s, min=60, max=7 * 24 * 3600),
        wecom_login=s.choice("wecom_login", WECOM_LOGINS, BindingConfig.wecom_login),
    )


def _audit(s: Section) -> AuditConfig:
    return AuditConfig(
        store_bodies=s.boolean("store_bodies", AuditConfig.store_bodies),
        retention_s=s.integer("retention_s", AuditConfig.retention_s, min=0),
    )


__all__ = [
    "BK_FIELDS",
    "TEMPLATE_PRESETS",
    "AccountConfig",
    "AccountKind",
    "AuditConfig",
    "BindingConfig",
    "ClientConfig",
    "MpAccount",
    "RelayConfig",
    "ServerConfig",
    "SidecarConfig",
    "StoreConfig",
    "WeChatConfig",
    "WecomAccount",
    "load_config",
]
