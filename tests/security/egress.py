"""Every TCP connection this process opens, recorded where it is made: ``socket.connect``.

asyncio's selector loop connects non-blocking sockets with ``sock.connect(address)`` (through
``loop.sock_connect``, which aiohttp's connector uses), so patching the method on
``socket.socket`` sees every outbound connection of the code under test, whatever library or
session made it, and not only those of one aiohttp session.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

Address = tuple[str, int]


@dataclass
class Connections:
    made: list[Address] = field(default_factory=list)

    def to(self, *, excluding: set[Address]) -> set[Address]:
        """The destinations, leaving out the test's own client-to-server connections."""
        return {a for a in self.made if a not in excluding}


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[Connections]:
    record = Connections()
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def _note(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            record.made.append((str(address[0]), int(address[1])))

    def connect(sock: socket.socket, address: Any) -> None:
        _note(sock, address)
        original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        _note(sock, address)
        return original_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield record
