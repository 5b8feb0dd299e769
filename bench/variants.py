"""The baseline servers measured beside the gateway: ``python -m bench.variants KIND --port N``.

* ``bare`` (a): an aiohttp handler that reads the body and answers ``success``: the ceiling
  for this stack, since every WeChat endpoint at least receives the request and answers it.
* ``sdk`` (b): verifies and decrypts the way the popular SDK examples do (``bench.sdkstyle``),
  without durability: what people run today.
* ``sdk-sqlite`` (d): (b) plus what people add for durability: one SQLite ``INSERT`` and
  ``commit()`` per callback, on the event loop, in WAL mode with ``synchronous=FULL`` (the
  gateway's own durability level, so the two differ only in how commits are grouped).

Each runs the same way the gateway does (``web.AppRunner``, no access log) and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bench.callbacks import APP_ID, ENCODING_AES_KEY, TOKEN
from bench.sdkstyle import (
    InvalidAppIdError,
    InvalidSignatureError,
    WeChatCrypto,
    check_signature,
    parse_message,
)

KINDS = ("bare", "sdk", "sdk-sqlite")
PATH = "/wechat/{account}/callback"

CRYPTO: web.AppKey[WeChatCrypto] = web.AppKey("crypto", WeChatCrypto)
DB: web.AppKey[sqlite3.Connection] = web.AppKey("db", sqlite3.Connection)


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="success")


def _decrypted(request: web.Request, body: bytes) -> str | web.Response:
    """The SDK example's flow: check ``signature``, then decrypt with ``msg_signature``."""
    query = request.query
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    try:
        check_signature(TOKEN, query.get("signature", ""), timestamp, nonce)
        return request.app[CRYPTO].decrypt_message(body, query.get("msg_signature", ""), timestamp, nonce)
    except (InvalidSignatureError, InvalidAppIdError):
        return web.Response(status=403, text="invalid signature")


async def sdk(request: web.Request) -> web.Response:
    xml = _decrypted(request, await request.read())
    if isinstance(xml, web.Response):
        return xml
    message = parse_message(xml)
    if message.type == "text" and not message.content:
        return web.Response(status=400, text="empty message")
    return web.Response(text="success")


async def sdk_sqlite(request: web.Request) -> web.Response:
    xml = _decrypted(request, await request.read())
    if isinstance(xml, web.Response):
        return xml
    message = parse_message(xml)
    db = request.app[DB]
    db.execute(
        "INSERT OR IGNORE INTO messages (msg_id, source, created, body) VALUES (?, ?, ?, ?)",
        (message.id, message.source, message.create_time.timestamp(), xml),
    )
    db.commit()
    return web.Response(text="success")


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS messages (msg_id INTEGER PRIMARY KEY, source TEXT, created REAL, body TEXT)"
    )
    db.commit()
    return db


def create_app(kind: str, db_path: Path | None) -> web.Application:
    app = web.Application()
    app[CRYPTO] = WeChatCrypto(TOKEN, ENCODING_AES_KEY, APP_ID)
    if kind == "bare":
        app.router.add_post(PATH, bare)
    elif kind == "sdk":
        app.router.add_post(PATH, sdk)
    else:
        if db_path is None:
            raise SystemExit("sdk-sqlite needs --db")
        app[DB] = open_db(db_path)
        app.router.add_post(PATH, sdk_sqlite)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve(kind: str, port: int, db_path: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(kind, db_path)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await stop.wait()
    finally:
        await runner.cleanup()
        if DB in app:
            app[DB].close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.kind, args.port, args.db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
