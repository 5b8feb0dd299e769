"""Fixtures of the security suite (docs/SECURITY.md cites every test here)."""

from tests.security.egress import connections
from tests.security.servers import recorder

__all__ = ["connections", "recorder"]
