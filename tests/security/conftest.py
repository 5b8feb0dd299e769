"""Fixtures of the security suite (see docs/SECURITY.md, which cites every test here)."""

from tests.security.servers import recorder

__all__ = ["recorder"]
