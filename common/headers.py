"""Response headers both tiers set the same way, kept free of the HTTP library (tests/test_split.py).

* :func:`plain_server_header` — an ``on_response_prepare`` hook: aiohttp's default ``Server``
  header names its version and Python's (``Python/3.11 aiohttp/3.14.5``), which tells a scanner
  which advisories to try. Every answer of either tier says ``wx-notify`` instead.
* :data:`NO_STORE` — the headers of an answer that carries a credential (an access token, a QR
  scene, a WeCom login state): no browser, proxy or shared cache may keep a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from types import MappingProxyType
from typing import Protocol

SERVER_HEADER = "wx-notify"
NO_STORE: Mapping[str, str] = MappingProxyType({"Cache-Control": "no-store"})


class _Answer(Protocol):
    @property
    def headers(self) -> MutableMapping[str, str]: ...


async def plain_server_header(request: object, response: _Answer) -> None:
    """Replace the version-bearing default ``Server`` header (aiohttp only sets it when absent)."""
    response.headers["Server"] = SERVER_HEADER


__all__ = ["NO_STORE", "SERVER_HEADER", "plain_server_header"]
