"""Start the gateway with experimental changes: ``python -m bench.whatif_boot PATCHES -- --config F``.

For ``bench.whatif`` only: each patch replaces one piece of the gateway in this process, to
measure what a proposed change would buy before anyone writes it properly. They are
experiments, not fixes: ``no-reply-lookup`` is only valid when every callback is a new event
(which is what the benchmark sends). A patch whose target no longer exists fails at start.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any
from xml.parsers import expat

import contract
import gateway.spool.queue
import gateway.wechat.callback
from gateway.__main__ import main as gateway_main
from gateway.errors import BodyTooLarge, MalformedRequest
from gateway.wechat.wxxml import Fields, check_markup


async def wait_reply_without_lookup(
    self: gateway.spool.queue.Spool, event_id: str, timeout_s: float
) -> contract.Reply | None:
    """``Spool.wait_reply`` minus the stored-state read (one spool-thread round trip per callback)."""
    if self._closing:
        return None
    future: asyncio.Future[contract.Reply | None] = asyncio.get_running_loop().create_future()
    self._waiters.setdefault(event_id, set()).add(future)
    try:
        async with asyncio.timeout(max(timeout_s, 0.0)):
            return await future
    except TimeoutError:
        return None
    finally:
        waiting = self._waiters.get(event_id)
        if waiting is not None:
            waiting.discard(future)
            if not waiting:
                del self._waiters[event_id]


def parse_fields_with_expat(body: bytes, *, max_bytes: int) -> Fields:
    """``wxxml.parse_fields`` with expat driven directly (same size, UTF-8 and markup checks)."""
    if len(body) > max_bytes:
        raise BodyTooLarge(f"body of {len(body)} bytes is over the {max_bytes} byte limit")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedRequest("body is not UTF-8") from None
    check_markup(text)
    root: Fields = {}
    stack: list[tuple[dict[str, Any], list[str]]] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append(({}, []))

    def data(chunk: str) -> None:
        if stack:
            stack[-1][1].append(chunk)

    def end(name: str) -> None:
        children, texts = stack.pop()
        if not stack:
            root.update(children)
            return
        parent = stack[-1][0]
        value: Any = children or "".join(texts)
        if name in parent:
            before = parent[name]
            parent[name] = [*before, value] if isinstance(before, list) else [before, value]
        else:
            parent[name] = value

    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise MalformedRequest(f"malformed XML: {exc}") from None
    return root


def _quiet_callback_log() -> None:
    """No "callback answered" info line per callback (``setup_logging`` leaves this level alone)."""
    logging.getLogger(gateway.wechat.callback.log.name).setLevel(logging.WARNING)


def _replace(owner: Any, name: str, value: Any) -> Callable[[], None]:
    def apply() -> None:
        if not hasattr(owner, name):
            raise SystemExit(f"whatif: {owner.__name__}.{name} no longer exists")
        setattr(owner, name, value)

    return apply


PATCHES: dict[str, Callable[[], None]] = {
    "no-reply-lookup": _replace(gateway.spool.queue.Spool, "wait_reply", wait_reply_without_lookup),
    "expat-fields": _replace(gateway.wechat.callback, "parse_fields", parse_fields_with_expat),
    "quiet-log": _quiet_callback_log,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        raise SystemExit("usage: python -m bench.whatif_boot PATCH[,PATCH] -- GATEWAY-ARGS")
    split = args.index("--")
    names = [n for n in ",".join(args[:split]).split(",") if n and n != "base"]
    for name in names:
        if name not in PATCHES:
            raise SystemExit(f"whatif: unknown patch {name!r}; known: {', '.join(PATCHES)}")
    for name in names:
        PATCHES[name]()
    return gateway_main(args[split + 1 :])


if __name__ == "__main__":
    sys.exit(main())
