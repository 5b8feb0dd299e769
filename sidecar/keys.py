"""The typed ``web.AppKey``s under which the sidecar app publishes its state.

Feature modules import their keys from here, never from ``sidecar.app`` (which imports the
features, so importing it back would be circular).

Set by ``create_app`` (synchronously): CONFIG, CLOCK, METRICS, HTTP_FACTORY, DISPATCHER, CALLERS.
Set by cleanup contexts at startup, in this order: STORE; HTTP and WXAPI; TOKENS.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from sidecar.bk.callers import CallerAuth
from sidecar.config import SidecarConfig
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher
from sidecar.store import Store
from sidecar.wechat.api import WeChatApi
from sidecar.wechat.tokens import TokenManager

Clock = Callable[[], float]
SessionFactory = Callable[[], aiohttp.ClientSession]

CONFIG = web.AppKey("config", SidecarConfig)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", SidecarMetrics)
HTTP_FACTORY: web.AppKey[SessionFactory] = web.AppKey("http_factory")
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
CALLERS = web.AppKey("callers", CallerAuth)
STORE: web.AppKey[Store] = web.AppKey("store")
HTTP = web.AppKey("http", aiohttp.ClientSession)
WXAPI = web.AppKey("wxapi", WeChatApi)
TOKENS = web.AppKey("tokens", TokenManager)

__all__ = [
    "CALLERS",
    "CLOCK",
    "CONFIG",
    "DISPATCHER",
    "HTTP",
    "HTTP_FACTORY",
    "METRICS",
    "STORE",
    "TOKENS",
    "WXAPI",
    "Clock",
    "SessionFactory",
]
