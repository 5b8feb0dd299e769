"""The chaos harness's system: devtools.stack's three processes with two more MP accounts.

:class:`devtools.stack.Stack` configures one MP account (``main``, in ``StackOptions.mp_mode``)
and one WeCom corp (``corp``). The chaos run wants every callback mode at once, so this adds an
MP account in plaintext mode and one in compatible mode, configured in all three tiers exactly
as an operator would add an account: the emulator (playing WeChat) gets the app and pushes to
``/wechat/<name>/callback``; the gateway gets the callback Token (and, for compat, the
EncodingAESKey); the sidecar gets the AppSecret. Secrets go to ``secrets/<name>`` like the
stack's own, and the configs name them as files.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from devtools.stack import Stack, StackOptions
from devtools.stack_config import MP_ACCOUNT, TEMPLATE_ID, MpMode

_ALNUM = string.ascii_letters + string.digits


def _alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass(frozen=True)
class ExtraMpAccount:
    """One more MP account: its name in the gateway and sidecar, its mode, and fresh identities."""

    name: str
    mode: MpMode
    app_id: str = field(default_factory=lambda: "wx" + secrets.token_hex(8))
    original_id: str = field(default_factory=lambda: "gh_" + secrets.token_hex(6))
    vault: dict[str, str] = field(
        repr=False,
        default_factory=lambda: {
            "token": _alnum(32),
            "aes_key": _alnum(43),
            "app_secret": secrets.token_hex(16),
        },
    )

    def secret_name(self, key: str) -> str:
        return f"{self.name}_{key}"


def _ref(account: ExtraMpAccount, key: str) -> str:
    return f'{{ file = "secrets/{account.secret_name(key)}" }}'


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def gateway_accounts(accounts: tuple[ExtraMpAccount, ...], reply_budget_s: float) -> str:
    blocks = []
    for a in accounts:
        lines = [
            "[[accounts]]",
            f"name = {_q(a.name)}",
            'kind = "mp"',
            f"app_id = {_q(a.app_id)}",
            f"reply_budget = {reply_budget_s!r}",
            f"token = {_ref(a, 'token')}",
        ]
        if a.mode != "plain":  # a plaintext-mode account has no EncodingAESKey to configure
            lines.append(f"encoding_aes_key = {_ref(a, 'aes_key')}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def sidecar_accounts(accounts: tuple[ExtraMpAccount, ...]) -> str:
    return "\n\n".join(
        "\n".join(
            [
                "[[accounts]]",
                f"name = {_q(a.name)}",
                'kind = "mp"',
                f"app_id = {_q(a.app_id)}",
                f"template_id = {_q(TEMPLATE_ID)}",
                f"app_secret = {_ref(a, 'app_secret')}",
            ]
        )
        for a in accounts
    )


def emulator_apps(accounts: tuple[ExtraMpAccount, ...], callback_base: str) -> str:
    return "\n\n".join(
        "\n".join(
            [
                "[[mp_apps]]",
                f"appid = {_q(a.app_id)}",
                f"original_id = {_q(a.original_id)}",
                f"mode = {_q(a.mode)}",
                f"callback_url = {_q(f'{callback_base}/wechat/{a.name}/callback')}",
                f"secret = {_ref(a, 'app_secret')}",
                f"token = {_ref(a, 'token')}",
                f"encoding_aes_key = {_ref(a, 'aes_key')}",
                "",
                "[[mp_apps.templates]]",
                f"template_id = {_q(TEMPLATE_ID)}",
                'title = "chaos"',
                'fields = { thing1 = "heading", thing2 = "message", time3 = "date" }',
            ]
        )
        for a in accounts
    )


def write_extra_accounts(
    workdir: Path,
    configs: dict[str, Path],
    accounts: tuple[ExtraMpAccount, ...],
    *,
    callback_base: str,
    reply_budget_s: float,
) -> None:
    """Write the accounts' secrets and append their tables to the three generated configs.

    Appending is valid TOML: each block opens a new element of an array of tables.
    """
    folder = workdir / "secrets"
    for account in accounts:
        for key, value in account.vault.items():
            fd = os.open(folder / account.secret_name(key), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(value)
    additions = {
        "gateway": gateway_accounts(accounts, reply_budget_s),
        "sidecar": sidecar_accounts(accounts),
        "emulator": emulator_apps(accounts, callback_base),
    }
    for tier, text in additions.items():
        with configs[tier].open("a", encoding="utf-8") as out:
            out.write("\n" + text + "\n")


class ChaosStack(Stack):
    """A :class:`Stack` with three MP accounts: ``main`` (in ``mp_mode``), ``mp_plain``, ``mp_compat``."""

    def __init__(self, workdir: Path, options: StackOptions | None = None) -> None:
        super().__init__(workdir, options)
        self.extra = (ExtraMpAccount("mp_plain", "plain"), ExtraMpAccount("mp_compat", "compat"))

    def write_configs(self) -> dict[str, Path]:
        """The stack's configs with the extra accounts appended, before any tier reads them."""
        configs = super().write_configs()
        write_extra_accounts(
            self.workdir,
            configs,
            self.extra,
            callback_base=self.urls.callback_base,
            reply_budget_s=self.options.reply_budget_s,
        )
        return configs

    def mp_accounts(self) -> dict[str, str]:
        """Every MP account as app id → account name (the emulator names apps, the gateway accounts)."""
        return {self.ids.app_id: MP_ACCOUNT, **{a.app_id: a.name for a in self.extra}}


__all__ = ["ChaosStack", "ExtraMpAccount", "write_extra_accounts"]
