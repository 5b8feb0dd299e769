"""deploy/nginx/wechat-gateway.conf itself, run on loopback over TLS with a throwaway certificate:
nginx -t, the Mozilla intermediate profile as a client sees it, and the real gateway behind it."""

import hashlib
import socket
import ssl
import time
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.config import load_config
from tests.e2e.nginx import check_config, free_port, render_dmz_site, start_dmz_nginx
from tests.e2e.stubs import CALLBACK
from tests.gateway.helpers import CallbackBuilder, text_message, write_config
from tests.tlscert import write_self_signed

pytestmark = pytest.mark.e2e

SIGNED_QUERY = "signature=5f2c&timestamp=1700000000&nonce=12%2034&echostr=hello"


@pytest.fixture
def tls_files(tmp_path) -> tuple[Path, Path]:
    """A throwaway self-signed P-256 certificate for 127.0.0.1 / localhost."""
    return write_self_signed(tmp_path / "wechat-gateway.crt", tmp_path / "wechat-gateway.key")


def client_context(cert: Path, *, version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def handshake(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(sock, server_hostname="localhost")


def test_dmz_site_passes_nginx_t(tmp_path, tls_files):
    check_config(render_dmz_site(tmp_path / "dmz", free_port(), 8080, *tls_files))


async def test_dmz_site_proxies_the_callback_over_tls_with_hsts(gateway_stub, tmp_path, tls_files, http):
    with start_dmz_nginx(tmp_path, free_port(), gateway_stub.port, *tls_files) as nginx:
        context = client_context(tls_files[0], version=ssl.TLSVersion.TLSv1_3)
        async with http.post(f"{nginx.url}{CALLBACK}?{SIGNED_QUERY}", data=b"<xml/>", ssl=context) as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"
            assert resp.headers["Server"] == "nginx"
    assert gateway_stub.seen[0].path_qs == f"{CALLBACK}?{SIGNED_QUERY}"
    assert gateway_stub.seen[0].headers["X-Forwarded-Proto"] == "https"


async def test_dmz_site_hides_everything_but_the_callback(gateway_stub, tmp_path, tls_files, http):
    with start_dmz_nginx(tmp_path, free_port(), gateway_stub.port, *tls_files) as nginx:
        for path in ("/metrics", "/healthz", "/readyz", "/relay/v1/lease", "/"):
            async with http.get(f"{nginx.url}{path}", ssl=client_context(tls_files[0])) as resp:
                assert resp.status == 404
    assert gateway_stub.seen == []


def test_dmz_site_negotiates_tls12_with_an_intermediate_cipher(tmp_path, tls_files):
    with start_dmz_nginx(tmp_path, free_port(), free_port(), *tls_files) as nginx:
        context = client_context(tls_files[0], version=ssl.TLSVersion.TLSv1_2)
        with handshake(nginx.port, context) as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.cipher()[0] in INTERMEDIATE_TLS12


def test_dmz_site_refuses_tls12_cbc_ciphers(tmp_path, tls_files):
    with start_dmz_nginx(tmp_path, free_port(), free_port(), *tls_files) as nginx:
        context = client_context(tls_files[0], version=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-SHA")
        with pytest.raises(ssl.SSLError):
            handshake(nginx.port, context).close()


def test_dmz_site_issues_no_tls12_session_tickets(tmp_path, tls_files):
    with start_dmz_nginx(tmp_path, free_port(), free_port(), *tls_files) as nginx:
        context = client_context(tls_files[0], version=ssl.TLSVersion.TLSv1_2)
        with handshake(nginx.port, context) as tls:
            assert tls.session is not None
            assert not tls.session.has_ticket


INTERMEDIATE_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
}


# ---------------------------------------------------------------- in front of the real gateway

TOKEN = "n9ZxT4kqLw"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx5823bf96d3bd56c7"


@pytest.fixture
async def gateway(tmp_path, aiohttp_server):
    """The real gateway app, relaying to a sidecar that is not there (events stay spooled)."""
    accounts = (
        f'[[accounts]]\nname = "main"\nkind = "mp"\napp_id = "{APP_ID}"\ntoken = "{TOKEN}"\n'
        f'encoding_aes_key = "{AES_KEY}"\nreply_budget = 0.2\n'
    )
    return await aiohttp_server(create_app(load_config(write_config(tmp_path, accounts))))


async def test_real_gateway_answers_the_deployment_guides_signed_check_through_nginx(gateway, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway.port)
    timestamp, nonce = str(int(time.time())), "20240601"
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    query = f"signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr=it-works"
    async with http.get(f"{nginx.url}{CALLBACK}?{query}") as resp:
        assert resp.status == 200
        assert await resp.text() == "it-works"


async def test_real_gateway_takes_a_safe_mode_message_through_nginx(gateway, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway.port)
    wechat = CallbackBuilder(TOKEN, AES_KEY, APP_ID, now=int(time.time()))
    query, body = wechat.mp_safe(text_message("告警已收到"))
    async with http.post(f"{nginx.url}{CALLBACK}", params=query, data=body) as resp:
        assert resp.status == 200
        assert await resp.text() == "success"


async def test_real_gateway_metrics_are_served_locally_but_not_through_nginx(gateway, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway.port)
    async with http.get(f"http://127.0.0.1:{gateway.port}/metrics") as direct:
        assert direct.status == 200
    async with http.get(f"{nginx.url}/metrics") as proxied:
        assert proxied.status == 404
