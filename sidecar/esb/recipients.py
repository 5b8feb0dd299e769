"""Platform usernames → WeChat ids, through the sidecar's own binding table.

BlueKing asked its user directory for each user's ``wx_userid`` and reported two kinds of bad
user; we keep its sentences so callers (and people reading alerts) see what they always saw:

* not in the binding table for this account (never bound, or unbound) →
  ``The following users are not blueking users: a,b`` (we cannot tell "no such user" from
  "never bound": both have no WeChat id here);
* bound, but the binding is inactive because the user unfollowed the account (the relay's
  ``unsubscribe`` event) → ``The following users contact format are incorrect: c``, BlueKing's
  sentence for "the user exists but the contact cannot be used". Sending would only fail at
  WeChat with 43004, so we report it instead. ``data.username_check`` names both groups. A
  stored id that is not an id of the account's kind (``@all``, ``a|b``: imported before the id
  rules existed) is reported the same way and logged: sending to it would reach other people.

Ids given directly (``receiver``) must have their kind's shape (:mod:`sidecar.wechat.ids`): one
that does not refuses the request, ``@all`` included. WeCom's own ``u1|u2`` is split first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.config import AccountKind
from sidecar.errors import InvalidWxId
from sidecar.esb import params as p
from sidecar.store import BindingStore
from sidecar.wechat import ids

log = logging.getLogger(__name__)
NOT_USERS = "The following users are not blueking users: "
BAD_CONTACT = "The following users contact format are incorrect: "
ALL_FAILED = "All users message failed to be sent. "
SOME_FAILED = "Some users failed to send wechat message. "


@dataclass(frozen=True)
class Resolution:
    """Whom to send to, and which usernames could not be mapped (empty when ids were given)."""

    wx_ids: tuple[str, ...]
    unbound: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    by_username: bool = False

    @property
    def invalid(self) -> list[str]:
        """Every username that gets no message, in the order they were asked for."""
        return [*self.unbound, *self.inactive]

    def note(self) -> str:
        """BlueKing's explanation of the bad usernames ('' when there are none)."""
        parts = []
        if self.unbound:
            parts.append(NOT_USERS + ",".join(self.unbound))
        if self.inactive:
            parts.append(BAD_CONTACT + ",".join(self.inactive))
        return ";".join(parts)

    def username_check(self) -> dict[str, list[str]]:
        """``data.username_check``: BlueKing's ``invalid`` plus the two groups it is made of."""
        return {"invalid": self.invalid, "unbound": list(self.unbound), "inactive": list(self.inactive)}


def direct(kind: AccountKind, receivers: Sequence[str]) -> Resolution:
    """The ids as given (WeCom's ``|`` lists split, repeats dropped), each checked for its shape."""
    wx_ids: dict[str, None] = {}  # a dict dedupes in O(1) and keeps the order
    for entry in receivers:
        for part in entry.split("|") if kind == "wecom" else (entry,):
            wx_id = part.strip()
            reason = ids.problem(kind, wx_id) if wx_id or kind == "mp" else None
            if reason is not None:
                raise InvalidWxId(f"{p.RECEIVER.label} [{p.RECEIVER.name}] {ids.shown(wx_id)} {reason}")
            if wx_id:
                wx_ids.setdefault(wx_id)
    return Resolution(tuple(wx_ids))


async def by_username(
    bindings: BindingStore, account: str, kind: AccountKind, usernames: Sequence[str]
) -> Resolution:
    found = await bindings.get_many(account, usernames)
    wx_ids: dict[str, None] = {}  # a dict dedupes in O(1) and keeps the order
    unbound: list[str] = []
    inactive: list[str] = []
    for name in usernames:
        binding = found.get(name)
        if binding is None:
            unbound.append(name)
        elif not binding.active:
            inactive.append(name)
        elif (reason := ids.problem(kind, binding.wx_id)) is not None:
            log.warning("stored WeChat id not sent to", extra={"account": account, "username": name, "reason": reason})
            inactive.append(name)
        else:
            wx_ids.setdefault(binding.wx_id)
    return Resolution(tuple(wx_ids), tuple(unbound), tuple(inactive), by_username=True)


__all__ = ["ALL_FAILED", "BAD_CONTACT", "NOT_USERS", "SOME_FAILED", "Resolution", "by_username", "direct"]
