"""``python -m sidecar --config sidecar.toml [--check]`` (console script ``wx-sidecar``).

Without a sub-command it runs the sidecar until SIGINT/SIGTERM (both are a clean shutdown:
cleanup contexts close the store and stop background tasks), its listener under
``server.max_connections`` (``common.listener``), answering requests aiohttp's parser refuses
without logging or echoing them (``common.http_server``).
``--check`` validates the config and exits 0 printing ``ok``, or 2 printing one line per
problem; secret files group or others may read are warnings (stderr in ``--check``, logged at
start), not problems; on PostgreSQL ``--check`` also connects and reports an unreachable,
un-migrated or too new database in one line (``store.check_store``). Sub-commands
(``python -m sidecar --config … bindings list``) come from feature modules: each exposes
``add_commands(subparsers)`` registering parsers with ``parser.set_defaults(command=fn)`` where
``fn(config, args) -> int``, and is listed in ``COMMAND_MODULES`` below — one line per feature.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import listener
from common.config import ConfigError, secret_file_warnings
from common.http_server import AppRunner
from common.logs import setup_logging
from sidecar.app import create_app
from sidecar.binding import cli as bindings_cli
from sidecar.config import SidecarConfig, load_config
from sidecar.store import check_store

log = logging.getLogger("sidecar")

EXIT_OK = 0
EXIT_CONFIG = 2

# Feature modules contributing sub-commands: each has add_commands(subparsers) -> None.
COMMAND_MODULES: tuple[Callable[[Any], None], ...] = (bindings_cli.add_commands,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sidecar", description="WeChat notification sidecar (intranet)")
    # Not required here: a sub-command may take --config after its name (checked in main).
    parser.add_argument("--config", type=Path, help="path to sidecar.toml")
    parser.add_argument("--check", action="store_true", help="validate the config and exit (0 ok, 2 problems)")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add_commands in COMMAND_MODULES:
        add_commands(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is None:
        parser.error("the following arguments are required: --config")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    warnings = secret_file_warnings(args.config)
    if args.check:
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return check(config)
    command: Callable[[SidecarConfig, argparse.Namespace], int] | None = getattr(args, "command", None)
    if command is not None:
        return command(config, args)
    return serve(config, warnings)


def check(config: SidecarConfig) -> int:
    """The config is valid; now ask the store whether it can serve this sidecar."""
    problem = asyncio.run(check_store(config.store))
    if problem is not None:
        print(f"store.url: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    print("ok")
    return EXIT_OK


def serve(config: SidecarConfig, warnings: Sequence[str] = ()) -> int:
    """Run until SIGINT/SIGTERM; ``warnings`` (secret files others may read) are logged first."""
    setup_logging(config.log_level)
    for warning in warnings:
        log.warning("secret file is not private", extra={"reason": warning})
    runner = AppRunner(create_app(config), shutdown_timeout=config.server.shutdown_timeout_s, access_log=None)
    server = config.server
    asyncio.run(listener.serve(runner, server.host, server.port, server.max_connections))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
