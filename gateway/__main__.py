"""``python -m gateway --config gateway.toml [--check]`` (also the ``wx-gateway`` script).

Exit codes: 0 after a clean shutdown or a passing ``--check``; 2 when the configuration has
problems (one line each on stderr); 1 when the gateway cannot start (spool, port). A secret file
that group or others may read is a warning, not a problem: on stderr in ``--check``, logged at start.
SIGTERM and SIGINT stop accepting connections, let requests in flight finish (up to
``server.shutdown_timeout_s``), stop the relay, let the spool finish its last group commit,
and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from common import listener
from common.config import ConfigError, secret_file_warnings
from common.http_server import AppRunner
from common.logs import setup_logging
from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError

__all__ = ["main", "serve"]

log = logging.getLogger("gateway")

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        print("ok")
        return 0
    setup_logging(config.log_level)
    for warning in warnings:
        log.warning("secret file is not private", extra={"reason": warning})
    try:
        asyncio.run(serve(config))
    except (GatewayError, OSError) as exc:  # spool cannot open, port taken: one line, no traceback
        log.error("cannot run", extra={"reason": str(exc)})
        return EXIT_RUNTIME
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wx-gateway", description="WeChat callback gateway (DMZ tier)")
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    return parser


async def serve(config: GatewayConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down in order (see the module docstring).

    The listener runs under ``server.max_connections`` (``common.listener``); the body deadline
    is the app's ``body_limits`` middleware.
    """
    runner = AppRunner(create_app(config), shutdown_timeout=config.server.shutdown_timeout_s, access_log=None)
    server = config.server
    await listener.serve(runner, server.host, server.port, server.max_connections)
    log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
