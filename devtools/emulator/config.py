"""What the emulated WeChat knows: MP apps, WeCom corps, the people holding phones, and its timings.

Tests build an :class:`EmulatorConfig` directly; the CLI reads the same shape from a JSON or TOML
file with :func:`load_config` (unknown keys are errors, as everywhere in this project). Secrets are
plain strings here — the emulator plays WeChat, which knows them — but are kept out of ``repr``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from common.config import ConfigError, Secret, Section, read_toml

Mode = Literal["plain", "compat", "safe"]
MODES: tuple[Mode, ...] = ("plain", "compat", "safe")
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


@dataclass(frozen=True, kw_only=True)
class Template:
    """A template the MP app has added; ``fields`` are (key, label) pairs in display order."""

    template_id: str
    title: str = ""
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class MpApp:
    """An Official Account as WeChat knows it: credentials, server-URL settings, templates."""

    appid: str
    secret: str = field(repr=False)
    token: str = field(repr=False)
    original_id: str
    mode: Mode = "plain"
    encoding_aes_key: str = field(default="", repr=False)
    callback_url: str = ""
    templates: tuple[Template, ...] = ()
    template_job_finish_event: bool = False

    def template(self, template_id: str) -> Template | None:
        return next((t for t in self.templates if t.template_id == template_id), None)


@dataclass(frozen=True, kw_only=True)
class WecomAgent:
    """A self-built WeCom app: its secret, and the callback settings WeCom keeps per app."""

    agentid: int
    secret: str = field(repr=False)
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    callback_url: str = ""


@dataclass(frozen=True, kw_only=True)
class WecomCorp:
    corpid: str
    agents: tuple[WecomAgent, ...]
    members: tuple[str, ...] = ()

    def agent(self, agentid: int) -> WecomAgent | None:
        return next((a for a in self.agents if a.agentid == agentid), None)


@dataclass(frozen=True, kw_only=True)
class User:
    """A person with a phone: openids per MP app (generated when absent), WeCom userid per corp."""

    name: str
    openids: Mapping[str, str] = field(default_factory=dict)
    follows: tuple[str, ...] = ()
    wecom: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Timing:
    """Every duration and limit WeChat imposes, overridable so tests need not wait for real time."""

    token_ttl_s: int = 7200
    token_overlap_s: float = 300.0
    stable_refresh_margin_s: float = 300.0
    stable_force_interval_s: float = 30.0
    stable_force_per_day: int = 20
    client_msg_id_window_s: float = 600.0
    custom_window_s: float = 48 * 3600.0
    qr_default_expire_s: int = 60
    wecom_per_minute: int = 30
    wecom_per_hour: int = 1000
    login_code_ttl_s: float = 300.0
    push_timeout_s: float = 5.0
    push_attempts: int = 4
    push_retry_delay_s: float = 0.0
    verify_timeout_s: float = 5.0


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    mp_apps: tuple[MpApp, ...] = ()
    wecom_corps: tuple[WecomCorp, ...] = ()
    users: tuple[User, ...] = ()
    timing: Timing = field(default_factory=Timing)
    listen: str = "127.0.0.1:0"
    callback_ca_file: str = ""
    callback_tls_verify: bool = True

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ConfigError(problems)

    def mp_app(self, appid: str) -> MpApp | None:
        return next((a for a in self.mp_apps if a.appid == appid), None)

    def corp(self, corpid: str) -> WecomCorp | None:
        return next((c for c in self.wecom_corps if c.corpid == corpid), None)


def config_problems(config: EmulatorConfig) -> list[str]:
    """Cross-field checks shared by the Python API and the file loader."""
    problems: list[str] = []
    appids = [a.appid for a in config.mp_apps]
    corpids = [c.corpid for c in config.wecom_corps]
    for i, app in enumerate(config.mp_apps):
        problems += _app_problems(f"mp_apps[{i}]", app)
    for i, corp in enumerate(config.wecom_corps):
        problems += _corp_problems(f"wecom_corps[{i}]", corp)
    for dup in {x for x in appids + corpids if (appids + corpids).count(x) > 1}:
        problems.append(f"app/corp id {dup!r} is configured twice")
    names = [u.name for u in config.users]
    for dup in {n for n in names if names.count(n) > 1}:
        problems.append(f"user {dup!r} is configured twice")
    for i, user in enumerate(config.users):
        where = f"users[{i}]"
        if not user.name:
            problems.append(f"{where}.name: is empty")
        problems += [f"{where}.follows: unknown MP app {a!r}" for a in user.follows if a not in appids]
        problems += [f"{where}.openids: unknown MP app {a!r}" for a in user.openids if a not in appids]
        problems += [f"{where}.wecom: unknown corp {c!r}" for c in user.wecom if c not in corpids]
    for kind, pairs in (
        ("openid", [(a, o) for u in config.users for a, o in u.openids.items()]),
        ("WeCom userid", [(c, i) for u in config.users for c, i in u.wecom.items()]),
    ):
        twice = sorted(p for p in set(pairs) if pairs.count(p) > 1)
        problems += [f"users: {kind} {i!r} of {a} is given to two users" for a, i in twice]
    return problems


def _app_problems(where: str, app: MpApp) -> list[str]:
    problems = []
    if not app.appid or not app.secret or not app.token:
        problems.append(f"{where}: appid, secret and token must not be empty")
    if not app.original_id.startswith("gh_"):
        problems.append(f"{where}.original_id: must start with gh_ (got {app.original_id!r})")
    if app.mode not in MODES:
        problems.append(f"{where}.mode: must be one of {', '.join(MODES)}")
    if (app.mode != "plain" or app.encoding_aes_key) and not _AES_KEY.fullmatch(app.encoding_aes_key):
        problems.append(f"{where}.encoding_aes_key: must be 43 characters of [A-Za-z0-9]")
    ids = [t.template_id for t in app.templates]
    problems += [f"{where}.templates: template {t!r} is configured twice" for t in set(ids) if ids.count(t) > 1]
    return problems


def _corp_problems(where: str, corp: WecomCorp) -> list[str]:
    problems = []
    if not corp.corpid:
        problems.append(f"{where}.corpid: is empty")
    if not corp.agents:
        problems.append(f"{where}.agents: at least one agent is required")
    ids = [a.agentid for a in corp.agents]
    problems += [f"{where}.agents: agentid {a} is configured twice" for a in set(ids) if ids.count(a) > 1]
    for j, agent in enumerate(corp.agents):
        if not agent.secret or not agent.token:
            problems.append(f"{where}.agents[{j}]: secret and token must not be empty")
        if not _AES_KEY.fullmatch(agent.encoding_aes_key):
            problems.append(f"{where}.agents[{j}].encoding_aes_key: must be 43 characters of [A-Za-z0-9]")
    return problems


def config_to_dict(config: EmulatorConfig) -> dict[str, Any]:
    """The config in the file format (secrets included: it is written for the emulator to read)."""
    data = asdict(config)
    for app in data["mp_apps"]:
        for template in app["templates"]:
            template["fields"] = dict(template["fields"])
        if not app["encoding_aes_key"]:
            del app["encoding_aes_key"]
    for user in data["users"]:
        user["follows"] = list(user["follows"])
    return data


def load_config(path: Path, listen: str | None = None) -> EmulatorConfig:
    """Read a ``.json`` or ``.toml`` file; ConfigError lists every problem, one line each."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
        except ValueError as exc:
            raise ConfigError([f"{path}: invalid JSON: {exc}"]) from None
        base_dir = path.resolve().parent
    else:
        data, base_dir = read_toml(path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be an object"])
    return config_from_dict(data, base_dir, listen=listen)


def config_from_dict(data: dict[str, Any], base_dir: Path, *, listen: str | None = None) -> EmulatorConfig:
    """Build the config from parsed JSON/TOML, refusing unknown keys and wrong types."""
    problems: list[str] = []
    root = Section(data, "", base_dir, problems)
    listen_value = root.text("listen", "127.0.0.1:0")
    ca_file = root.text("callback_ca_file", "")
    tls_verify = root.boolean("callback_tls_verify", True)
    timing = _timing(root.table("timing"))
    apps = [_mp_app(s, _raw_list(data, "mp_apps")[i]) for i, s in enumerate(root.tables("mp_apps"))]
    corps = [_corp(s) for s in root.tables("wecom_corps")]
    users = [_user(s, _raw_list(data, "users")[i]) for i, s in enumerate(root.tables("users"))]
    root.check_known()
    if problems:
        raise ConfigError(problems)
    return EmulatorConfig(
        mp_apps=tuple(apps),
        wecom_corps=tuple(corps),
        users=tuple(users),
        timing=timing,
        listen=listen or listen_value,
        callback_ca_file=str(base_dir / ca_file) if ca_file else "",
        callback_tls_verify=tls_verify,
    )


def _raw_list(data: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """The raw tables of an array, for reading tables whose keys are data (openids by appid)."""
    value = data.get(name, [])
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _timing(sec: Section) -> Timing:
    values: dict[str, Any] = {}
    for name, default in vars(Timing()).items():
        if isinstance(default, int):
            values[name] = sec.integer(name, default, min=1)
        else:
            values[name] = sec.number(name, default, min=0)
    return Timing(**values)


def _secret(sec: Section, name: str) -> str:
    """A required secret (literal, env or file); missing ones are recorded as problems."""
    value = sec.secret(name)
    return value.reveal() if isinstance(value, Secret) else ""


def _required(sec: Section, name: str) -> str:
    value = sec.text(name)
    return value if isinstance(value, str) else ""


def _required_int(sec: Section, name: str) -> int:
    value = sec.integer(name, min=1)
    return value if isinstance(value, int) else 0


def _mp_app(sec: Section, raw: Mapping[str, Any]) -> MpApp:
    templates = [_template(s, _raw_list(raw, "templates")[i]) for i, s in enumerate(sec.tables("templates"))]
    return MpApp(
        appid=_required(sec, "appid"),
        secret=_secret(sec, "secret"),
        token=_secret(sec, "token"),
        original_id=_required(sec, "original_id"),
        mode=sec.choice("mode", MODES, "plain"),
        encoding_aes_key=_secret(sec, "encoding_aes_key") if sec.has("encoding_aes_key") else "",
        callback_url=sec.text("callback_url", ""),
        templates=tuple(templates),
        template_job_finish_event=sec.boolean("template_job_finish_event", False),
    )


def _template(sec: Section, raw: Mapping[str, Any]) -> Template:
    fields_raw = raw.get("fields", [])
    if isinstance(fields_raw, dict):
        labels = sec.table("fields")
        pairs = tuple((key, labels.text(key, "") or key) for key in fields_raw)
    else:
        pairs = tuple((key, key) for key in sec.texts("fields", []))
    return Template(template_id=_required(sec, "template_id"), title=sec.text("title", ""), fields=pairs)


def _corp(sec: Section) -> WecomCorp:
    agents = tuple(
        WecomAgent(
            agentid=_required_int(a, "agentid"),
            secret=_secret(a, "secret"),
            token=_secret(a, "token"),
            encoding_aes_key=_secret(a, "encoding_aes_key"),
            callback_url=a.text("callback_url", ""),
        )
        for a in sec.tables("agents", required=True)
    )
    return WecomCorp(corpid=_required(sec, "corpid"), agents=agents, members=tuple(sec.texts("members", [])))


def _user(sec: Section, raw: Mapping[str, Any]) -> User:
    def mapping(name: str) -> dict[str, str]:
        raw_map = raw.get(name, {})
        table = sec.table(name)
        return {key: table.text(key, "") for key in raw_map} if isinstance(raw_map, dict) else {}

    return User(
        name=_required(sec, "name"),
        openids=mapping("openids"),
        follows=tuple(sec.texts("follows", [])),
        wecom=mapping("wecom"),
    )
