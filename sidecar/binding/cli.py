"""``python -m sidecar --config sidecar.toml bindings list|show|remove|import``: the admin's view.

* ``list [--account A] [--limit N] [--json]`` — every binding (all accounts unless ``--account``);
* ``show USERNAME [--account A]`` — one user's binding (exit 1 when there is none);
* ``remove USERNAME [--account A]`` — unbind one user (exit 1 when there was nothing to remove);
* ``import FILE [--account A]`` — a CSV ``username,wx_userid`` exported from BlueKing (a header
  row, a UTF-8 BOM and extra columns are fine). Rows already bound to the same id, or without
  one, are skipped; rows whose username or id is malformed — an id must have the account's
  shape (:mod:`sidecar.wechat.ids`: no ``@all``, no ``|`` or ``,``, no control characters) —
  are refused; rows that clash (the user has another id, the id has another user, or the file
  names either twice) are reported as conflicting and left out; everything else is imported in
  one transaction. The report ends ``imported N, skipped M, conflicting K, refused R``.

``--account`` defaults to the default account. Exit codes: 0 done, 1 nothing found, 2 bad
input (unknown account, unreadable file or CSV), always with one line on stderr. Everything
printed that the admin did not type as it stands (usernames, ids, the store's reasons) has its
control characters escaped (``\u001b``), so a stored value cannot drive the terminal or break a
tab-separated row.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidecar.binding.identity import valid_username
from sidecar.config import AccountKind, SidecarConfig
from sidecar.errors import StoreError
from sidecar.store import Binding, Store, open_store
from sidecar.wechat.ids import escaped, problem, shown

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2

Command = Callable[[SidecarConfig, argparse.Namespace], int]


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("bindings", help="list, show, remove or import user bindings")
    _config_option(parser)
    commands = parser.add_subparsers(title="bindings commands", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="list bindings")
    listing.add_argument("--account", help="only this account")
    listing.add_argument("--limit", type=int, default=100_000, help="at most this many (default 100000)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    _config_option(listing)
    listing.set_defaults(command=run(_list))

    show = commands.add_parser("show", help="show one user's binding")
    show.add_argument("username")
    show.add_argument("--account", help="default: the default account")
    _config_option(show)
    show.set_defaults(command=run(_show))

    remove = commands.add_parser("remove", help="unbind one user")
    remove.add_argument("username")
    remove.add_argument("--account", help="default: the default account")
    _config_option(remove)
    remove.set_defaults(command=run(_remove))

    load = commands.add_parser("import", help="import a BlueKing CSV export: username,wx_userid")
    load.add_argument("file", type=Path)
    load.add_argument("--account", help="the account the ids belong to (default: the default account)")
    _config_option(load)
    load.set_defaults(command=run(_import))


def _config_option(parser: argparse.ArgumentParser) -> None:
    """``--config`` may also follow the sub-command (``bindings list --config sidecar.toml``)."""
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="path to sidecar.toml")


def run(action: Callable[[Store, SidecarConfig, argparse.Namespace], Awaitable[int]]) -> Command:
    """A sub-command: check the account, open the store, run, close; StoreError exits 2."""

    def command(config: SidecarConfig, args: argparse.Namespace) -> int:
        account = getattr(args, "account", None)
        if account is not None and config.account(account) is None:
            names = ", ".join(a.name for a in config.accounts)
            print(f"unknown account {shown(account)} (configured: {names})", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            return asyncio.run(_with_store(action, config, args))
        except StoreError as exc:
            print(f"store error: {exc.detail}", file=sys.stderr)
            return EXIT_BAD_INPUT

    return command


async def _with_store(
    action: Callable[[Store, SidecarConfig, argparse.Namespace], Awaitable[int]],
    config: SidecarConfig,
    args: argparse.Namespace,
) -> int:
    store = await open_store(config.store)
    try:
        return await action(store, config, args)
    finally:
        await store.close()


def _account(config: SidecarConfig, args: argparse.Namespace) -> str:
    return str(args.account) if args.account else config.default_account().name


def _line(binding: Binding) -> str:
    """One tab-separated row; a tab or newline inside a field is escaped, never a column break."""
    when = datetime.fromtimestamp(binding.bound_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = "active" if binding.active else "inactive"
    return "\t".join(escaped(cell) for cell in (binding.account, binding.username, binding.wx_id, state, when))


def _json_line(row: dict[str, object]) -> str:
    """One JSON object; json escapes C0 controls, :func:`escaped` the rest (DEL, C1, bidi)."""
    return escaped(json.dumps(row, ensure_ascii=False))


async def _list(store: Store, config: SidecarConfig, args: argparse.Namespace) -> int:
    bindings = await store.bindings.list(args.account, limit=max(1, args.limit))
    if args.json:
        for b in bindings:
            row = {
                "account": b.account,
                "username": b.username,
                "wx_id": b.wx_id,
                "active": b.active,
                "bound_at": b.bound_at,
            }
            print(_json_line(row))
        return EXIT_OK
    print("account\tusername\twx_id\tstate\tbound_at")
    for b in bindings:
        print(_line(b))
    print(f"{len(bindings)} binding(s)", file=sys.stderr)
    return EXIT_OK


async def _show(store: Store, config: SidecarConfig, args: argparse.Namespace) -> int:
    account = _account(config, args)
    binding = await store.bindings.get(account, args.username)
    if binding is None:
        print(f"{escaped(args.username)} has no binding on {account}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(_line(binding))
    return EXIT_OK


async def _remove(store: Store, config: SidecarConfig, args: argparse.Namespace) -> int:
    account = _account(config, args)
    if not await store.bindings.unbind(account, args.username):
        print(f"{escaped(args.username)} has no binding on {account}", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(f"removed the binding of {escaped(args.username)} on {account}")
    return EXIT_OK


@dataclass
class ImportReport:
    rows: list[Binding] = field(default_factory=list)
    row_lines: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conflicting: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


async def _import(store: Store, config: SidecarConfig, args: argparse.Namespace) -> int:
    account = _account(config, args)
    kind = _kind(config, account)
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        report = parse_rows(text, account, kind, now=time.time())
    except csv.Error as exc:  # e.g. a field over csv's 128 KiB limit: the file is not a usable export
        print(f"cannot read {escaped(str(args.file))}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    existing = await store.bindings.get_many(account, [b.username for b in report.rows])
    fresh: list[Binding] = []
    fresh_lines: list[int] = []
    for line, row in zip(report.row_lines, report.rows, strict=True):
        current = existing.get(row.username)
        if current is not None and current.wx_id == row.wx_id:
            report.skipped.append(f"line {line}: {row.username}: already bound to this id")
        else:
            fresh.append(row)
            fresh_lines.append(line)
    result = await store.bindings.import_rows(fresh, now=time.time())
    by_name = dict(zip([b.username for b in fresh], fresh_lines, strict=True))
    for username, reason in result.skipped:
        report.conflicting.append(f"line {by_name.get(username, 0)}: {username}: {reason}")
    _print_report(report, result.imported)
    return EXIT_OK


def _kind(config: SidecarConfig, account: str) -> AccountKind:
    found = config.account(account)
    assert found is not None  # run() refused unknown accounts; the default always exists
    return found.kind


def _print_report(report: ImportReport, imported: int) -> None:
    for message in report.refused:
        print(f"refused     {escaped(message)}")
    for message in report.skipped:
        print(f"skipped     {escaped(message)}")
    for message in report.conflicting:
        print(f"conflicting {escaped(message)}")
    counts = f"skipped {len(report.skipped)}, conflicting {len(report.conflicting)}, refused {len(report.refused)}"
    print(f"imported {imported}, {counts}")


def parse_rows(text: str, account: str, kind: AccountKind, *, now: float) -> ImportReport:
    """Read the CSV; rows that cannot be imported are reported as refused, skipped or conflicting.

    ``line`` in the report is the line of the file the row starts on (a quoted field may span
    several), so the admin finds the row the message is about.
    """
    report = ImportReport()
    users: dict[str, int] = {}
    ids: dict[str, int] = {}
    reader = csv.reader(io.StringIO(text))
    start = 1
    for cells in _records(reader):
        number, start = start, reader.line_num + 1
        cells = [c.strip() for c in cells]
        if not any(cells) or (number == 1 and cells[0].lower() in ("username", "user", "用户名")):
            continue
        username, wx_id = [*cells, "", ""][:2]
        if not valid_username(username):
            report.refused.append(f"line {number}: {shown(username)}: not a valid username")
        elif not wx_id:
            report.skipped.append(f"line {number}: {username}: no WeChat id")
        elif (reason := problem(kind, wx_id)) is not None:
            report.refused.append(f"line {number}: {username}: WeChat id {shown(wx_id)} {reason}")
        elif username in users or wx_id in ids:
            first = users.get(username) or ids.get(wx_id)
            report.conflicting.append(f"line {number}: {username}: clashes with line {first} of the file")
        else:
            users[username], ids[wx_id] = number, number
            report.rows.append(Binding(account, username, wx_id, True, now, now))
            report.row_lines.append(number)
    return report


def _records(reader: Any) -> Iterator[list[str]]:
    """The reader's records; a record csv cannot read raises csv.Error naming the line it ends on."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise csv.Error(f"line {reader.line_num}: {exc}") from None


__all__ = ["ImportReport", "add_commands", "parse_rows"]
