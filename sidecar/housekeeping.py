"""Pruning what the store no longer needs, hourly, so it does not grow without bound.

* inbox rows, once processed, after ``[store] inbox_retention_s`` (default 7 days: far beyond
  any redelivery of an acknowledged event, which only happens when an ack is lost);
* audit records after ``[audit] retention_s`` (0 keeps them forever);
* binding sessions and links one day after they expired (kept that long for support questions).

Every purge is a conditional DELETE, safe to run on several replicas at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from sidecar.config import SidecarConfig
from sidecar.errors import StoreError
from sidecar.keys import CLOCK, CONFIG, STORE
from sidecar.store import Store

log = logging.getLogger(__name__)

INTERVAL_S = 3600.0
EXPIRED_KEEP_S = 24 * 3600.0


async def purge_once(store: Store, config: SidecarConfig, now: float) -> dict[str, int]:
    """One pass; returns how many rows each purge removed."""
    removed = {
        "inbox": await store.inbox.purge(before=now - config.store.inbox_retention_s),
        "binding_sessions": await store.binding_attempts.purge(before=now - EXPIRED_KEEP_S),
        "binding_links": await store.binding_links.purge(before=now - EXPIRED_KEEP_S),
        "audit": 0,
    }
    if config.audit.retention_s:
        removed["audit"] = await store.audit.purge(before=now - config.audit.retention_s)
    return removed


async def run(app: web.Application, interval_s: float = INTERVAL_S) -> None:
    while True:
        try:
            removed = await purge_once(app[STORE], app[CONFIG], app[CLOCK]())
            if any(removed.values()):
                log.info("store pruned", extra=removed)
        except StoreError as exc:
            log.warning("store pruning failed", extra={"reason": exc.detail})
        await asyncio.sleep(interval_s)


async def housekeeping_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(run(app))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


__all__ = ["housekeeping_ctx", "purge_once"]
