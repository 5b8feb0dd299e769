"""The app skeleton over HTTP: health, readiness, metrics, request ids, error mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from sidecar.app import create_app
from sidecar.config import SidecarConfig, load_config
from sidecar.errors import MalformedRequest, StoreUnavailable
from sidecar.keys import STORE
from tests.sidecar.helpers import write_config


@pytest.fixture
def config(tmp_path: Path) -> SidecarConfig:
    return load_config(write_config(tmp_path))


async def test_healthz_answers_ok(aiohttp_client: Any, config: SidecarConfig) -> None:
    client: TestClient = await aiohttp_client(create_app(config))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_ready_when_store_answers(aiohttp_client: Any, config: SidecarConfig) -> None:
    client: TestClient = await aiohttp_client(create_app(config))
    response = await client.get("/readyz")
    assert response.status == 200
    assert config.store.path.exists()


async def test_readyz_unavailable_when_store_fails(aiohttp_client: Any, config: SidecarConfig) -> None:
    app = create_app(config)
    client: TestClient = await aiohttp_client(app)

    async def broken_ping() -> None:
        raise StoreUnavailable("disk gone")

    app[STORE].ping = broken_ping  # type: ignore[method-assign]
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["reason"] == "disk gone"


async def test_metrics_exposes_prometheus_text(aiohttp_client: Any, config: SidecarConfig) -> None:
    client: TestClient = await aiohttp_client(create_app(config))
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'wxsc_http_requests_total{route="/healthz",status="200"} 1.0' in await response.text()


async def test_metrics_ready_gauge_follows_the_store_on_each_scrape(aiohttp_client: Any, config: SidecarConfig) -> None:
    app = create_app(config)
    client: TestClient = await aiohttp_client(app)
    assert "\nwxsc_ready 1.0\n" in await (await client.get("/metrics")).text()

    async def broken_ping() -> None:
        raise StoreUnavailable("disk gone")

    app[STORE].ping = broken_ping  # type: ignore[method-assign]
    assert "\nwxsc_ready 0.0\n" in await (await client.get("/metrics")).text()


async def test_request_id_is_echoed_when_well_formed(aiohttp_client: Any, config: SidecarConfig) -> None:
    client: TestClient = await aiohttp_client(create_app(config))
    response = await client.get("/healthz", headers={"X-Request-Id": "abcdef0123456789"})
    assert response.headers["X-Request-Id"] == "abcdef0123456789"


async def test_request_id_is_generated_when_malformed(aiohttp_client: Any, config: SidecarConfig) -> None:
    client: TestClient = await aiohttp_client(create_app(config))
    response = await client.get("/healthz", headers={"X-Request-Id": "<script>"})
    assert len(response.headers["X-Request-Id"]) == 32


async def test_unknown_route_is_404_with_request_id(aiohttp_client: Any, config: SidecarConfig) -> None:
    client: TestClient = await aiohttp_client(create_app(config))
    response = await client.get("/nope")
    assert response.status == 404
    assert "X-Request-Id" in response.headers


async def test_sidecar_error_maps_to_its_status_with_json_reason(aiohttp_client: Any, config: SidecarConfig) -> None:
    app = create_app(config)

    async def bad(request: web.Request) -> web.Response:
        raise MalformedRequest("field x is missing")

    app.router.add_get("/bad", bad)
    client: TestClient = await aiohttp_client(app)
    response = await client.get("/bad")
    assert response.status == 400
    assert await response.json() == {"error": "malformed request", "detail": "field x is missing"}


async def test_unexpected_error_is_500_without_traceback(aiohttp_client: Any, config: SidecarConfig) -> None:
    app = create_app(config)

    async def boom(request: web.Request) -> web.Response:
        raise KeyError("internal detail")

    app.router.add_get("/boom", boom)
    client: TestClient = await aiohttp_client(app)
    response = await client.get("/boom")
    assert response.status == 500
    body = await response.text()
    assert "internal detail" not in body and "Traceback" not in body


def test_create_app_opens_nothing(config: SidecarConfig) -> None:
    create_app(config)
    assert not config.store.path.exists()
