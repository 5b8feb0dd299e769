"""Fixtures for the end-to-end suite (real processes on loopback)."""

from tests.e2e.chain import chain_factory
from tests.e2e.nginx import nginx_factory
from tests.e2e.stubs import gateway_stub, http, second_gateway_stub

__all__ = ["chain_factory", "gateway_stub", "http", "nginx_factory", "second_gateway_stub"]
