"""``make demo`` (``python -m devtools.demo``): the whole system on loopback, one scenario, a transcript.

Starts the WeChat emulator, the sidecar and the gateway as real processes on free loopback ports
(configs, secrets and SQLite files in ``.demo/``), runs :mod:`devtools.scenario` — URL
verifications, alice binding by QR scan in safe mode, bob binding by WeCom login, a BlueKing
``send_weixin`` to each — prints what each phone received, stops everything, and exits 0 only
if every step succeeded (1 otherwise, 2 for a bad work directory).

Options: ``--keep`` leaves the system running after the scenario and prints its URLs until
Ctrl-C; ``--pull`` relays in pull mode (the sidecar leases events from the gateway);
``--mp-mode plain|compat|safe`` picks the MP callback encryption; ``--workdir`` moves ``.demo``.
Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import time
from pathlib import Path

import aiohttp

from devtools.emulator.client import EmulatorClient
from devtools.scenario import BINDING_LINKS, Scenario, StepFailed, counters, phone_transcript
from devtools.stack import Stack, TierError
from devtools.stack_config import StackOptions

MARKER = ".wx-demo"  # a work directory holding this file is ours to wipe
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class WorkdirError(Exception):
    """The work directory exists, holds files, and was not made by the demo: it is left alone."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the system running; print its URLs until Ctrl-C")
    parser.add_argument("--pull", action="store_true", help="relay in pull mode (default: push)")
    parser.add_argument("--mp-mode", default="safe", choices=("plain", "compat", "safe"), help="MP callback mode")
    parser.add_argument("--workdir", type=Path, default=Path(".demo"), help="configs, secrets, databases, logs")
    return parser.parse_args(argv)


def prepare_workdir(path: Path) -> Path:
    """A fresh, empty work directory: ours from an earlier run is wiped, anything else refused."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).is_file():
            raise WorkdirError(f"{path} exists and was not created by the demo; choose another --workdir")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("created by python -m devtools.demo; wiped by the next run\n", encoding="utf-8")
    return path


def say(text: str = "") -> None:
    print(text, flush=True)


async def run(args: argparse.Namespace) -> int:
    options = StackOptions(relay_mode="pull" if args.pull else "push", mp_mode=args.mp_mode)
    workdir = prepare_workdir(args.workdir)
    stack = Stack(workdir, options)
    say(f"wx-notify-gateway demo — {options.relay_mode} relay, MP {options.mp_mode} mode, work directory {workdir}")
    ports = stack.ports
    say(
        f"Starting the WeChat emulator (:{ports.emulator}), the sidecar (:{ports.sidecar}) "
        f"and the gateway (:{ports.gateway}) on 127.0.0.1 …"
    )
    started = time.monotonic()
    try:
        async with stack:
            say(f"✓ all three tiers ready in {time.monotonic() - started:.1f} s\n")
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(timeout=timeout) as http, EmulatorClient(stack.urls.emulator) as emu:
                scenario = Scenario(stack, http, emu, say=say)
                await scenario.run()
                say("\nWhat each phone received (from the emulator's /_emu/phones):")
                say(phone_transcript(await emu.phones()))
                say(f"\n{await counters(stack, http)}")
                if args.keep:
                    await keep_running(stack, scenario)
    except TierError as exc:
        say(f"✗ the system did not start: {exc}")
        return EXIT_FAILED
    passed = sum(1 for r in scenario.results if r.ok)
    verdict = "every step succeeded" if scenario.ok else f"{passed} of {len(scenario.results)} steps succeeded"
    say(f"\n{'✓' if scenario.ok else '✗'} {verdict}; all processes stopped. Logs: {workdir / 'logs'}")
    return EXIT_OK if scenario.ok else EXIT_FAILED


async def keep_running(stack: Stack, scenario: Scenario) -> None:
    """Print where everything is, then wait for Ctrl-C (SIGTERM cancels the whole run, see ``_main``)."""
    try:
        link = (await scenario.post_api(BINDING_LINKS, {"username": "carol"}))["data"]["url"]
    except (StepFailed, aiohttp.ClientError) as exc:
        link = f"(no link: {exc})"
    urls = stack.urls
    say("\nThe system keeps running (Ctrl-C stops it):")
    say(f"  binding page for carol   {link}   (one-time link)")
    say(f"    carol scans its QR code: POST {urls.emulator}/_emu/users/carol/scan "
        f'{{"ticket": <the newest ticket in {urls.emulator}/_emu/qrcodes>}}')
    say(f"  WeChat callback URLs     {urls.callback_base}/wechat/main/callback  …/wechat/corp/callback")
    say(f"  gateway metrics          {urls.gateway}/metrics   (ready: {urls.gateway}/readyz)")
    say(f"  sidecar metrics          {urls.sidecar}/metrics   (ready: {urls.sidecar}/readyz)")
    say(f"  BlueKing send API        {urls.sidecar}/api/c/compapi/cmsi/send_weixin/  (bk_app_code=bk_paas, "
        f"secret in {stack.workdir / 'secrets' / 'client_secret'})")
    say(f"  emulator admin           {urls.emulator}/_emu/phones   {urls.emulator}/_emu/pushes")
    say(f"  configs and logs         {stack.workdir}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    say("\nStopping …")


async def _main(args: argparse.Namespace) -> int:
    """``run`` with SIGTERM treated like Ctrl-C: the task is cancelled and the stack stopped."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run(args)
    finally:
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except WorkdirError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ndemo: interrupted; all processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
