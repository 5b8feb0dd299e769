"""Pre-fill a spool file with a backlog: ``python -m bench.prefill --spool PATH --events N``.

A backlog is what the spool holds after the sidecar was unreachable for a while. Building one
through the gateway's HTTP endpoint would take as long as the outage did, so the events are
written with the spool's own storage layer (``gateway.spool.db.SpoolDb``, the same schema,
indexes and insert transaction the gateway uses), in large transactions. Each event is a real
envelope (``contract.make_envelope``) with a distinct MsgId, so the relay and the sink treat it
exactly like one that came in over HTTP.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.callbacks import ACCOUNT, TO_USER, USERS, openid
from contract import dump_json, event_id, format_timestamp, make_envelope, parse_envelope
from gateway.spool.db import NewRow, SpoolDb

CHUNK = 20_000  # rows per transaction
FIRST_MSG_ID = 8_000_000_000_000_000_000


def rows(count: int, *, first_msg_id: int = FIRST_MSG_ID) -> Iterator[NewRow]:
    """``count`` spool rows of distinct text messages, received a second apart in the past.

    The JSON is written with an f-string (a million ``json.dumps`` calls would dominate the fill
    time); ``check_rows`` proves it is what ``contract.make_envelope`` + ``dump_json`` produce.
    """
    now = time.time()
    received = format_timestamp(datetime.now(UTC))
    users = [openid(n) for n in range(USERS)]
    for n in range(count):
        msg_id = first_msg_id + n
        message = _message(msg_id, users[n % USERS], int(now) - count + n)
        eid = event_id(ACCOUNT, message)
        body = (
            f'{{"id":"{eid}","account":"{ACCOUNT}","kind":"mp","mode":"safe","received_at":"{received}",'
            f'"message":{{"ToUserName":"{TO_USER}","FromUserName":"{message["FromUserName"]}",'
            f'"CreateTime":"{message["CreateTime"]}","MsgType":"text","Content":"{message["Content"]}",'
            f'"MsgId":"{msg_id}"}}}}'
        )
        yield NewRow(eid, ACCOUNT, body, now - count + n)


def _message(msg_id: int, user: str, create_time: int) -> dict[str, str]:
    return {
        "ToUserName": TO_USER,
        "FromUserName": user,
        "CreateTime": str(create_time),
        "MsgType": "text",
        "Content": f"status of alert #{msg_id % 100000}",
        "MsgId": str(msg_id),
    }


def check_rows(sample: Sequence[NewRow]) -> None:
    """Fail loudly if the fast JSON differs from the contract's envelope for the same message."""
    for row in sample:
        envelope = parse_envelope(json.loads(row.body))
        expected = make_envelope(ACCOUNT, "mp", "safe", envelope["message"], datetime.now(UTC))
        expected["received_at"] = envelope["received_at"]
        if dump_json(expected).decode("utf-8") != row.body:
            raise RuntimeError(f"prefill row differs from the contract's envelope: {row.body}")


def prefill(path: Path, count: int) -> float:
    """Write ``count`` pending events into the spool at ``path``; returns seconds taken."""
    started = time.monotonic()
    db = SpoolDb.open(path)
    try:
        chunk: list[NewRow] = []
        check_rows(list(itertools.islice(rows(3), 3)))
        for row in rows(count):
            chunk.append(row)
            if len(chunk) == CHUNK:
                db.insert(chunk)
                chunk = []
        if chunk:
            db.insert(chunk)
    finally:
        db.close()
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prefill")
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)
    seconds = prefill(args.spool, args.events)
    print(f"{args.events} events in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
