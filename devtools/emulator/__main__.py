"""``python -m devtools.emulator --config emu.json [--listen 127.0.0.1:0]``.

When the server is listening it prints one JSON line on stdout, ``{"base_url": "http://…", "pid": …}``,
so a parent process (the demo, an e2e fixture) can start it on a free port and read where it is.
It runs until SIGINT or SIGTERM. A bad configuration exits 2 with one line per problem on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from common.config import ConfigError
from common.logs import setup_logging
from devtools.emulator.app import run_emulator
from devtools.emulator.config import EmulatorConfig, load_config


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulator", description="A WeChat emulator (dev tool).")
    parser.add_argument("--config", required=True, type=Path, help="emulator config, .json or .toml")
    parser.add_argument("--listen", help="host:port to listen on (port 0 = a free port); overrides the config")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser.parse_args(argv)


def _split_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError([f"listen: must be host:port (got {listen!r})"])
    return host.strip("[]"), int(port)


async def _serve(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_emulator(config, host=host, port=port) as emu:
        print(json.dumps({"base_url": emu.base_url, "pid": os.getpid()}), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config, listen=args.listen)
        host, port = _split_listen(config.listen)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"emulator config: {problem}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(config, host, port))
    except OSError as exc:
        print(f"emulator: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
