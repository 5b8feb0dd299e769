"""Generated configuration for a whole system on loopback: secrets, ports and the three config files.

Every run gets fresh identities and secrets (CSPRNG): an MP app id, a WeCom corp id, the
callback Token and EncodingAESKey of each, the AppSecret and CorpSecret, a client app secret
for the BlueKing-compatible API and a Standard Webhooks relay secret. Secrets are written to
``secrets/<name>`` (mode 0600) and the configs name them as ``{ file = "secrets/<name>" }``,
the way an operator would keep them out of the config files.

The emulator plays WeChat, so it knows the MP app's and the WeCom app's secrets too; the gateway
gets only the callback Token/EncodingAESKey and the relay secret; the sidecar everything else.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contract import PUSH_PATH, generate_secret

RelayMode = Literal["push", "pull"]
MpMode = Literal["plain", "compat", "safe"]

MP_ACCOUNT = "main"  # served at /wechat/main/callback
WECOM_ACCOUNT = "corp"  # served at /wechat/corp/callback
AGENT_ID = 1000002
TEMPLATE_ID = "tpl-alert"
CLIENT_APP_CODE = "bk_paas"
TEMPLATE_TITLE = "告警通知"
# The sidecar's default template mapping (thing1 = heading, thing2 = message, time3 = date).
TEMPLATE_FIELDS = {"thing1": "告警项目", "thing2": "告警内容", "time3": "告警时间"}
PEOPLE = ("alice", "bob", "carol", "dave")  # alice, carol, dave hold WeChat; bob and carol are in the corp
WECOM_MEMBERS = ("bob", "carol")

_ALNUM = string.ascii_letters + string.digits


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass(frozen=True)
class Identities:
    """Who is who in this run: the WeChat-side ids and every secret, freshly generated."""

    app_id: str = field(default_factory=lambda: "wx" + secrets.token_hex(8))
    original_id: str = field(default_factory=lambda: "gh_" + secrets.token_hex(6))
    corp_id: str = field(default_factory=lambda: "ww" + secrets.token_hex(8))
    vault: dict[str, str] = field(
        repr=False,
        default_factory=lambda: {
            "mp_token": _alnum(32),
            "mp_aes_key": _alnum(43),
            "mp_app_secret": secrets.token_hex(16),
            "wecom_token": _alnum(32),
            "wecom_aes_key": _alnum(43),
            "wecom_corp_secret": secrets.token_urlsafe(32),
            "client_secret": secrets.token_urlsafe(24),
            "relay_secret": generate_secret(),
        },
    )

    @property
    def client_secret(self) -> str:
        return self.vault["client_secret"]


@dataclass(frozen=True)
class Ports:
    """Every listener, chosen before anything starts so the configs can name each other."""

    emulator: int = field(default_factory=free_port)
    gateway: int = field(default_factory=free_port)
    gateway_pull: int = field(default_factory=free_port)
    sidecar: int = field(default_factory=free_port)


@dataclass(frozen=True)
class StackOptions:
    """What may differ between the demo, the end-to-end tests and the chaos harness."""

    relay_mode: RelayMode = "push"
    mp_mode: MpMode = "safe"
    callback_base: str | None = None  # where WeChat calls (an nginx front); None: the gateway itself
    reply_budget_s: float = 3.0  # gateway: wait this long for a passive reply
    push_timeout_s: float = 5.0  # emulator: WeChat gives up on a callback after this
    push_retry_delay_s: float = 0.0
    relay_timeout_s: float = 10.0
    relay_backoff_max_s: float = 1.0  # both tiers: a restarted peer is found again within a second
    lease_s: int = 10  # pull mode: events leased to a sidecar that died come back after this
    lease_wait_s: int = 5
    shutdown_timeout_s: float = 3.0
    log_level: str = "info"


def _toml(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # JSON strings are TOML basic strings


def _table(header: str, values: Mapping[str, str | int | float | bool]) -> str:
    lines = [header] if header else []
    lines += [f"{key} = {_toml(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _secret_ref(name: str) -> str:
    return f'{{ file = "secrets/{name}" }}'


def write_secrets(workdir: Path, ids: Identities) -> None:
    folder = workdir / "secrets"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, value in ids.vault.items():
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(value)


def gateway_toml(ids: Identities, ports: Ports, options: StackOptions) -> str:
    relay: dict[str, str | int | float | bool] = {
        "mode": options.relay_mode,
        "timeout_s": options.relay_timeout_s,
        "backoff_initial_s": 0.1,
        "backoff_max_s": options.relay_backoff_max_s,
        "lease_s": options.lease_s,
    }
    if options.relay_mode == "push":
        relay["push_url"] = f"http://127.0.0.1:{ports.sidecar}{PUSH_PATH}"
    else:
        relay["pull_listen"] = f"127.0.0.1:{ports.gateway_pull}"
    accounts = [
        (MP_ACCOUNT, "mp", ids.app_id, "mp_token", "mp_aes_key"),
        (WECOM_ACCOUNT, "wecom", ids.corp_id, "wecom_token", "wecom_aes_key"),
    ]
    parts = [
        _table("", {"log_level": options.log_level}),
        _table(
            "[server]",
            {"listen": f"127.0.0.1:{ports.gateway}", "shutdown_timeout_s": options.shutdown_timeout_s},
        ),
        _table("[spool]", {"path": "gateway-spool.sqlite3"}),
        _table("[relay]", relay) + f"secrets = [{_secret_ref('relay_secret')}]\n",
    ]
    for name, kind, app_id, token, aes_key in accounts:
        parts.append(
            _table(
                "[[accounts]]",
                {"name": name, "kind": kind, "app_id": app_id, "reply_budget": options.reply_budget_s},
            )
            + f"token = {_secret_ref(token)}\nencoding_aes_key = {_secret_ref(aes_key)}\n"
        )
    return "\n".join(parts)


def sidecar_toml(ids: Identities, ports: Ports, options: StackOptions) -> str:
    base = f"http://127.0.0.1:{ports.sidecar}"
    emulator = f"http://127.0.0.1:{ports.emulator}"
    relay: dict[str, str | int | float | bool] = {
        "mode": options.relay_mode,
        "timeout_s": options.relay_timeout_s,
        "backoff_initial_s": 0.1,
        "backoff_max_s": options.relay_backoff_max_s,
        "lease_wait_s": options.lease_wait_s,
    }
    if options.relay_mode == "pull":
        relay["pull_url"] = f"http://127.0.0.1:{ports.gateway_pull}"
    return "\n".join(
        [
            _table("", {"log_level": options.log_level}),
            _table(
                "[server]",
                {
                    "listen": f"127.0.0.1:{ports.sidecar}",
                    "public_url": base,
                    "shutdown_timeout_s": options.shutdown_timeout_s,
                },
            ),
            _table("[store]", {"url": "sqlite:///sidecar.sqlite3"}),
            _table("[relay]", relay) + f"secrets = [{_secret_ref('relay_secret')}]\n",
            _table("[wechat]", {"mp_api": emulator, "wecom_api": emulator, "retry_backoff_s": 0.1}),
            _table(
                "[[accounts]]",
                {"name": MP_ACCOUNT, "kind": "mp", "app_id": ids.app_id, "template_id": TEMPLATE_ID, "default": True},
            )
            + f"app_secret = {_secret_ref('mp_app_secret')}\n",
            _table(
                "[[accounts]]",
                {"name": WECOM_ACCOUNT, "kind": "wecom", "corp_id": ids.corp_id, "agent_id": AGENT_ID},
            )
            + f"corp_secret = {_secret_ref('wecom_corp_secret')}\n",
            _table("[[clients]]", {"app_code": CLIENT_APP_CODE, "may_get_token": True})
            + f"app_secret = {_secret_ref('client_secret')}\n",
            _table("[binding]", {"identity": "link"}),
        ]
    )


def emulator_toml(ids: Identities, ports: Ports, options: StackOptions) -> str:
    front = options.callback_base or f"http://127.0.0.1:{ports.gateway}"
    app = {
        "appid": ids.app_id,
        "original_id": ids.original_id,
        "mode": options.mp_mode,
        "callback_url": f"{front}/wechat/{MP_ACCOUNT}/callback",
    }
    agent: dict[str, str | int | float | bool] = {
        "agentid": AGENT_ID,
        "callback_url": f"{front}/wechat/{WECOM_ACCOUNT}/callback",
    }
    fields = ", ".join(f"{key} = {_toml(label)}" for key, label in TEMPLATE_FIELDS.items())
    users = []
    for name in PEOPLE:
        line = _table("[[users]]", {"name": name})
        if name in WECOM_MEMBERS:
            line += f"wecom = {{ {ids.corp_id} = {_toml(name)} }}\n"
        users.append(line)
    return "\n".join(
        [
            _table("", {"listen": f"127.0.0.1:{ports.emulator}"}),
            _table(
                "[timing]",
                {"push_timeout_s": options.push_timeout_s, "push_retry_delay_s": options.push_retry_delay_s},
            ),
            _table("[[mp_apps]]", app)
            + f"secret = {_secret_ref('mp_app_secret')}\ntoken = {_secret_ref('mp_token')}\n"
            + f"encoding_aes_key = {_secret_ref('mp_aes_key')}\n",
            _table("[[mp_apps.templates]]", {"template_id": TEMPLATE_ID, "title": TEMPLATE_TITLE})
            + f"fields = {{ {fields} }}\n",
            _table("[[wecom_corps]]", {"corpid": ids.corp_id}),
            _table("[[wecom_corps.agents]]", agent)
            + f"secret = {_secret_ref('wecom_corp_secret')}\ntoken = {_secret_ref('wecom_token')}\n"
            + f"encoding_aes_key = {_secret_ref('wecom_aes_key')}\n",
            *users,
        ]
    )


def write_configs(workdir: Path, ids: Identities, ports: Ports, options: StackOptions) -> dict[str, Path]:
    """Write the secrets and the three configs into ``workdir``; answer each tier's config path."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_secrets(workdir, ids)
    paths = {}
    for tier, render in (("emulator", emulator_toml), ("sidecar", sidecar_toml), ("gateway", gateway_toml)):
        path = workdir / f"{tier}.toml"
        path.write_text(render(ids, ports, options), encoding="utf-8")
        paths[tier] = path
    return paths


__all__ = [
    "AGENT_ID",
    "CLIENT_APP_CODE",
    "MP_ACCOUNT",
    "PEOPLE",
    "TEMPLATE_FIELDS",
    "TEMPLATE_ID",
    "TEMPLATE_TITLE",
    "WECOM_ACCOUNT",
    "WECOM_MEMBERS",
    "Identities",
    "MpMode",
    "Ports",
    "RelayMode",
    "StackOptions",
    "free_port",
    "write_configs",
]
