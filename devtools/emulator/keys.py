"""Typed keys for what the emulator app and its requests carry, and the background task set."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine

from aiohttp import web

from devtools.emulator.pusher import Pusher
from devtools.emulator.state import World


class Background:
    """Tasks started by a request that outlive it (pushes with ``wait: false``, job-finish events)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def spawn(self, coro: Coroutine[object, None, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


WORLD = web.AppKey("world", World)
PUSHER = web.AppKey("pusher", Pusher)
BACKGROUND = web.AppKey("background", Background)
CALLER = web.RequestKey("caller", str)
