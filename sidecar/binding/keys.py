"""The binding feature's typed app keys (set by ``sidecar.binding.setup`` and its contexts)."""

from __future__ import annotations

import jinja2
from aiohttp import web

from sidecar.binding.cookies import SessionCookies
from sidecar.binding.identity import IdentityResolver
from sidecar.binding.service import BindingService

COOKIES = web.AppKey("binding_cookies", SessionCookies)
JINJA = web.AppKey("binding_jinja", jinja2.Environment)
SERVICE = web.AppKey("binding_service", BindingService)  # set at startup
IDENTITY = web.AppKey("binding_identity", IdentityResolver)  # set at startup

__all__ = ["COOKIES", "IDENTITY", "JINJA", "SERVICE"]
