"""The names both tiers' configs must agree on: account kinds, account names and relay modes.

An account named in ``gateway.toml`` is the same account in ``sidecar.toml`` and in every
envelope between them, and both tiers must pick the same relay mode; so the vocabulary lives
here once rather than in each config loader.
"""

from __future__ import annotations

import re
from typing import Literal

AccountKind = Literal["mp", "wecom"]
RelayMode = Literal["push", "pull"]

ACCOUNT_KINDS: tuple[AccountKind, ...] = ("mp", "wecom")
RELAY_MODES: tuple[RelayMode, ...] = ("push", "pull")
ACCOUNT_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def account_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an account (it appears in URLs, envelopes and both configs)."""
    if ACCOUNT_NAME_RE.match(name):
        return None
    return "must be 1-32 characters of letters, digits, _ or -"
