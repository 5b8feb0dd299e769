"""The BlueKing-compatible send API (bk-compat.md): an existing PaaS points its ESB here unchanged.

Routes (GET and POST each; ``v2`` is the same component):

* ``/api/c/compapi/[v2/]cmsi/send_weixin/`` — the channel's main component;
* ``/api/c/compapi/[v2/]cmsi/send_msg/`` — ``msg_type=weixin`` only;
* ``/api/c/compapi/[v2/]cmsi/send_mp_weixin/`` — MP template message to openids;
* ``/api/c/compapi/[v2/]cmsi/send_qy_weixin/`` — WeCom app message to userids.

Modules: ``params`` and ``forms`` read requests as BlueKing's forms did; ``accounts`` picks the
account; ``recipients`` maps usernames through the binding table; ``template`` and ``mp`` send
template messages; ``wecom`` sends app messages; ``outcome`` words the answer; ``views`` ties
them together. docs/BLUEKING-API.md is the caller's guide.
"""

from __future__ import annotations

from aiohttp import web

from sidecar.esb.forms import Component
from sidecar.esb.template import RecentSends
from sidecar.esb.views import RECENT, handler
from sidecar.keys import CLOCK

COMPONENTS: tuple[Component, ...] = ("send_weixin", "send_msg", "send_mp_weixin", "send_qy_weixin")
PREFIXES = ("/api/c/compapi/cmsi/", "/api/c/compapi/v2/cmsi/")


def setup(app: web.Application) -> None:
    """Add the component routes (no HEAD: a send must never be triggered by a probe)."""
    app[RECENT] = RecentSends(clock=app[CLOCK])
    for component in COMPONENTS:
        handle = handler(component)
        for prefix in PREFIXES:
            app.router.add_route("GET", f"{prefix}{component}/", handle)
            app.router.add_route("POST", f"{prefix}{component}/", handle)


__all__ = ["COMPONENTS", "PREFIXES", "RECENT", "setup"]
