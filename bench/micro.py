"""CPU cost of each step of a safe-mode callback, in isolation: ``python -m bench.micro``.

The profile (``bench.profile``) says where a loaded gateway spends its time; this says what each
step costs on its own, measured as this thread's CPU time (``time.thread_time``, best of seven
passes over a few thousand distinct callbacks), so other processes on the machine barely move it.
The figures back the "What would help" estimates in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from bench import sdkstyle
from bench.callbacks import APP_ID, ENCODING_AES_KEY, MSG_ID_BASE, TOKEN, generate
from bench.procs import pin_self
from common.logs import JsonFormatter
from contract import RelaySigner, dump_json, generate_secret, load_json, make_envelope, parse_results
from gateway.metrics import GatewayMetrics
from gateway.wechat.crypto import MessageCipher
from gateway.wechat.verify import verify_msg_signature, verify_plain_signature
from gateway.wechat.wxxml import parse_fields

COUNT = 4000
LIMIT = 64 * 1024


def measure(work: Callable[[], object], per: int = COUNT, passes: int = 7) -> float:
    """Best-of-``passes`` CPU microseconds of this thread per item of ``work``."""
    best = float("inf")
    for _ in range(passes):
        started = time.thread_time()
        work()
        best = min(best, time.thread_time() - started)
    return 1e6 * best / per


def steps() -> list[tuple[str, Callable[[], object], int]]:
    requests = list(generate(COUNT, first_msg_id=MSG_ID_BASE))
    cipher = MessageCipher.from_encoding_aes_key(ENCODING_AES_KEY, APP_ID)
    sdk = sdkstyle.WeChatCrypto(TOKEN, ENCODING_AES_KEY, APP_ID)
    queries = [dict(parse_qsl(r.path.split("?", 1)[1])) for r in requests]
    bodies = [r.body.encode() for r in requests]
    outers = [parse_fields(b, max_bytes=LIMIT) for b in bodies]
    inners = [cipher.decrypt(o["Encrypt"]) for o in outers]
    messages = [parse_fields(i, max_bytes=LIMIT) for i in inners]
    envelopes = [make_envelope("main", "mp", "safe", m, datetime.now(UTC)) for m in messages]
    stored = [dump_json(e).decode() for e in envelopes]
    batches = [dump_json({"events": envelopes[i : i + 100]}) for i in range(0, COUNT, 100)]
    answers = [
        dump_json({"results": [{"id": e["id"], "status": "accepted", "reply": None} for e in envelopes[i : i + 100]]})
        for i in range(0, COUNT, 100)
    ]
    signer = RelaySigner([generate_secret()])
    metrics = GatewayMetrics()
    logger = _json_logger()

    def sdk_flow() -> None:
        for q, b in zip(queries, bodies, strict=True):
            sdkstyle.check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
            sdkstyle.parse_message(sdk.decrypt_message(b, q["msg_signature"], q["timestamp"], q["nonce"]))

    return [
        ("(b) SDK-style: check_signature + decrypt_message + parse_message", sdk_flow, COUNT),
        ("gateway: both signature checks", lambda: _signatures(queries, outers), COUNT),
        ("gateway: parse_fields, outer envelope", lambda: [parse_fields(b, max_bytes=LIMIT) for b in bodies], COUNT),
        ("gateway: AES decrypt + base64", lambda: [cipher.decrypt(o["Encrypt"]) for o in outers], COUNT),
        ("gateway: parse_fields, decrypted message", lambda: [parse_fields(i, max_bytes=LIMIT) for i in inners], COUNT),
        ("contract: make_envelope", lambda: [
            make_envelope("main", "mp", "safe", m, datetime.now(UTC)) for m in messages
        ], COUNT),
        ("spool commit: dump_json(envelope)", lambda: [dump_json(e) for e in envelopes], COUNT),
        ("relay lease: json.loads(stored envelope)", lambda: [json.loads(s) for s in stored], COUNT),
        ("relay post: dump_json of 100 envelopes, per event", lambda: [
            dump_json({"events": envelopes[i : i + 100]}) for i in range(0, COUNT, 100)
        ], COUNT),
        ("relay post: sign a 100-event body, per event", lambda: [signer.headers(b) for b in batches], COUNT),
        ("relay answer: parse_results of 100, per event", lambda: [
            parse_results(load_json(a)) for a in answers
        ], COUNT),
        ("log: one JSON line (logging + JsonFormatter)", lambda: _repeat(lambda: _log_line(logger)), COUNT),
        ("metrics: Counter.labels(...).inc()", lambda: _repeat(
            lambda: metrics.callbacks.labels("main", "safe", "accepted").inc()
        ), COUNT),
        ("spool: one run_in_executor round trip (loop thread)", _executor_round_trips, COUNT),
    ]  # fmt: skip


def _signatures(queries: list[dict[str, str]], outers: list[dict[str, Any]]) -> None:
    for query, outer in zip(queries, outers, strict=True):
        verify_plain_signature(query, TOKEN)
        verify_msg_signature(query, TOKEN, outer["Encrypt"])


def _repeat(step: Callable[[], None], times: int = COUNT) -> None:
    for _ in range(times):
        step()


def _json_logger() -> logging.Logger:
    handler = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bench.micro.json")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _log_line(logger: logging.Logger) -> None:
    extra: dict[str, Any] = {"account": "main", "mode": "safe", "event_id": "evt_0", "user": "oBen…abcd"}
    logger.info("callback answered", extra={**extra, "outcome": "accepted"})


def _executor_round_trips() -> None:
    async def hops(executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(COUNT):
            await loop.run_in_executor(executor, int)

    with ThreadPoolExecutor(max_workers=1) as executor:
        asyncio.run(hops(executor))


def main(argv: Sequence[str] | None = None) -> int:
    pin_self()
    for name, work, per in steps():
        print(f"{measure(work, per):8.1f} us  {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
