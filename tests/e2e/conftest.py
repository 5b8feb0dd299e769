"""Fixtures for the end-to-end suite (real processes on loopback)."""

from tests.e2e.nginx import nginx_factory

__all__ = ["nginx_factory"]
