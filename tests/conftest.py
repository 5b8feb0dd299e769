"""Fixtures shared by every suite.

aioresponses 0.7.9 builds ``ClientResponse`` without the ``stream_writer`` argument that
aiohttp 3.14 requires, so every mocked response would fail with a TypeError. The autouse
fixture below substitutes a subclass that supplies it, for every suite that mocks WeChat.

tests/pg.py is loaded as a plugin: its ``pg_server`` / ``pg_url`` fixtures start one real
PostgreSQL per session, for any suite that asks for one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aioresponses.core
import pytest
from aiohttp import ClientResponse

DATA = Path(__file__).parent / "data"

pytest_plugins = ["tests.pg"]


class CompatResponse(ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_compat(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(aioresponses.core, "ClientResponse", CompatResponse)
    yield


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """The official WXBizMsgCrypt known-answer vectors (copied from shared/vectors)."""
    return json.loads((DATA / "crypto.json").read_text(encoding="utf-8"))
