"""The DMZ nginx config, run for real: deploy/nginx's snippets in the loopback variant and the
production site itself over TLS, in front of a recording stand-in for the gateway."""

from __future__ import annotations

import asyncio
import collections
import datetime
import ipaddress
import json
import re
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict

from tests.e2e.nginx import DEPLOY_NGINX, check_config, free_port, render_dmz_site, start_dmz_nginx

pytestmark = pytest.mark.e2e

CALLBACK = "/wechat/main/callback"
SIGNED_QUERY = "signature=5f2c&timestamp=1700000000&nonce=12%2034&echostr=hello"
CAP = 64 * 1024  # client_max_body_size 64k, the gateway's max_body_bytes default


@dataclass(frozen=True)
class Seen:
    method: str
    path_qs: str
    headers: CIMultiDict[str]
    body: bytes
    peer: tuple[str, int]


@dataclass
class Upstream:
    """Stands in for the gateway: records every request that gets past nginx."""

    port: int = 0
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        self.seen.append(Seen(request.method, request.raw_path, CIMultiDict(request.headers), body, tuple(peer[:2])))
        await asyncio.sleep(self.delay_s)
        return web.Response(text="success")


@pytest.fixture
async def upstream(aiohttp_server):
    return await recording_upstream(aiohttp_server)


async def recording_upstream(aiohttp_server) -> Upstream:
    """A catch-all app on a free port that records and answers "success"."""
    recorder = Upstream()
    app = web.Application(client_max_size=4 * CAP)
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    server = await aiohttp_server(app)
    recorder.port = server.port
    return recorder


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


async def raw_request(port: int, target: str, method: str = "GET") -> int:
    """Send a request line verbatim (no client-side normalisation) and return the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def flood(session: aiohttp.ClientSession, url: str, n: int = 60, **headers: str) -> collections.Counter[int]:
    """``n`` concurrent callbacks from one client; the count of each status."""

    async def one() -> int:
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            return resp.status

    return collections.Counter(await asyncio.gather(*(one() for _ in range(n))))


# ---------------------------------------------------------------- what is proxied


async def test_callback_get_reaches_gateway_with_query_string_intact(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.get(f"{nginx.url}{CALLBACK}?{SIGNED_QUERY}") as resp:
        assert resp.status == 200
        assert await resp.text() == "success"
    assert [(s.method, s.path_qs) for s in upstream.seen] == [("GET", f"{CALLBACK}?{SIGNED_QUERY}")]


async def test_callback_post_reaches_gateway_with_body_byte_for_byte(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    body = "<xml><Content><![CDATA[你好 & <bye>]]></Content></xml>".encode()
    async with session.post(f"{nginx.url}{CALLBACK}?{SIGNED_QUERY}", data=body) as resp:
        assert resp.status == 200
    assert upstream.seen[0].method == "POST"
    assert upstream.seen[0].body == body


async def test_callback_body_at_the_cap_is_proxied(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.post(f"{nginx.url}{CALLBACK}", data=b"x" * CAP) as resp:
        assert resp.status == 200
    assert len(upstream.seen[0].body) == CAP


async def test_callback_body_over_the_cap_is_refused_413(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.post(f"{nginx.url}{CALLBACK}", data=b"x" * (CAP + 1)) as resp:
        assert resp.status == 413
    assert upstream.seen == []


async def test_callback_headers_name_the_peer_not_a_client_supplied_address(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.get(f"{nginx.url}{CALLBACK}", headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
        assert resp.status == 200
    headers = upstream.seen[0].headers
    assert headers["X-Real-IP"] == "127.0.0.1"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-Id"])


async def test_callback_behind_trusted_balancer_names_the_forwarded_client(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, real_ip_from=["127.0.0.1"])
    async with session.get(f"{nginx.url}{CALLBACK}", headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
        assert resp.status == 200
    assert upstream.seen[0].headers["X-Real-IP"] == "203.0.113.9"
    assert upstream.seen[0].headers["X-Forwarded-For"] == "203.0.113.9"


async def test_callback_path_reaches_gateway_normalised(upstream, nginx_factory):
    nginx = nginx_factory(upstream_port=upstream.port)
    assert await raw_request(nginx.port, "/wechat/%6Dain/./callback?x=%2F1") == 200
    assert upstream.seen[0].path_qs == "/wechat/main/callback?x=%2F1"


async def test_callback_account_names_of_every_allowed_character_are_proxied(upstream, nginx_factory):
    nginx = nginx_factory(upstream_port=upstream.port)
    name = "Az09_-" + "a" * 26  # 32 characters
    assert await raw_request(nginx.port, f"/wechat/{name}/callback") == 200
    assert upstream.seen[0].path_qs == f"/wechat/{name}/callback"


async def test_upstream_connections_are_kept_alive(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    for _ in range(5):
        async with session.get(f"{nginx.url}{CALLBACK}") as resp:
            assert resp.status == 200
    assert len({s.peer for s in upstream.seen}) == 1


async def test_legacy_path_is_proxied_when_enabled(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, legacy=True)
    async with session.post(f"{nginx.url}/console/user_center/weixin/mp/callback/?{SIGNED_QUERY}", data=b"<xml/>") as r:
        assert r.status == 200
    assert upstream.seen[0].path_qs == f"/console/user_center/weixin/mp/callback/?{SIGNED_QUERY}"


# ---------------------------------------------------------------- what is not


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/metrics",
        "/healthz",
        "/readyz",
        "/relay/v1/lease",
        "/relay/v1/ack",
        "/relay/v1/events",
        "/favicon.ico",
        "/wechat/main",
        "/wechat/main/callback/",
        "/wechat/main/callbackx",
        "/WECHAT/main/callback",
        "/wechat/a.b/callback",
        "/wechat/" + "a" * 33 + "/callback",
        "/wechat/main/callback/../../metrics",
        "/wechat/main/callback%2F..%2F..%2Fmetrics",
        "/wechat/main%2Fcallback%3Fx",
        "/console/user_center/weixin/mp/callback/",
    ],
)
async def test_paths_other_than_the_callback_are_404_from_nginx(upstream, nginx_factory, target):
    nginx = nginx_factory(upstream_port=upstream.port)
    assert await raw_request(nginx.port, target) == 404
    assert await raw_request(nginx.port, target, method="POST") == 404
    assert upstream.seen == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
async def test_callback_methods_other_than_get_and_post_are_405(upstream, nginx_factory, session, method):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.request(method, f"{nginx.url}{CALLBACK}") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, POST"
    assert upstream.seen == []


@pytest.mark.parametrize("path", [CALLBACK, "/metrics"])
async def test_server_header_carries_no_version(upstream, nginx_factory, session, path):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.get(f"{nginx.url}{path}") as resp:
        assert resp.headers["Server"] == "nginx"


# ---------------------------------------------------------------- rate limit


async def test_rate_limit_throttles_a_client_not_on_the_whitelist(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, whitelist=[])
    statuses = await flood(session, f"{nginx.url}{CALLBACK}")
    assert statuses[429] > 0
    assert len(upstream.seen) == statuses[200] < 60


async def test_rate_limit_spares_a_whitelisted_client(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, whitelist=["127.0.0.0/8"])
    assert await flood(session, f"{nginx.url}{CALLBACK}") == {200: 60}


async def test_rate_limit_behind_balancer_spares_whitelisted_forwarded_client(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, whitelist=["203.0.113.7"], real_ip_from=["127.0.0.1"])
    url = f"{nginx.url}{CALLBACK}"
    assert await flood(session, url, **{"X-Forwarded-For": "203.0.113.7"}) == {200: 60}
    assert (await flood(session, url, **{"X-Forwarded-For": "198.51.100.1"}))[429] > 0


async def test_rate_limit_ignores_a_forged_whitelisted_forwarded_address(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, whitelist=["203.0.113.7"])
    statuses = await flood(session, f"{nginx.url}{CALLBACK}", **{"X-Forwarded-For": "203.0.113.7"})
    assert statuses[429] > 0


# ---------------------------------------------------------------- timeouts and failures


@pytest.fixture
async def second_upstream(aiohttp_server):
    return await recording_upstream(aiohttp_server)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_slow_gateway_is_answered_504_without_trying_another_replica(
    upstream, second_upstream, nginx_factory, session, method
):
    upstream.delay_s = second_upstream.delay_s = 3.0
    nginx = nginx_factory(upstream_port=[upstream.port, second_upstream.port], proxy_timeout_s=1.0)
    started = time.monotonic()
    async with session.request(method, f"{nginx.url}{CALLBACK}", data=b"<xml/>") as resp:
        assert resp.status == 504
    assert time.monotonic() - started < 2.5
    assert len(upstream.seen) + len(second_upstream.seen) == 1


async def test_gateway_down_is_answered_502(nginx_factory, session):
    nginx = nginx_factory(upstream_port=free_port())
    async with session.post(f"{nginx.url}{CALLBACK}", data=b"<xml/>") as resp:
        assert resp.status == 502
        assert resp.headers["Server"] == "nginx"


# ---------------------------------------------------------------- logs


async def test_access_log_omits_the_query_string(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port)
    async with session.get(f"{nginx.url}{CALLBACK}?echostr=ECHO-SECRET&openid=oPersonal123") as resp:
        assert resp.status == 200
    log = nginx.read_access_log()
    assert f"GET {CALLBACK} HTTP/1.1" in log
    assert "ECHO-SECRET" not in log
    assert "oPersonal123" not in log


async def test_throttled_requests_leave_no_query_string_in_the_error_log(upstream, nginx_factory, session):
    nginx = nginx_factory(upstream_port=upstream.port, whitelist=[])
    statuses = await flood(session, f"{nginx.url}{CALLBACK}?openid=oPersonal123")
    assert statuses[429] > 0
    assert "oPersonal123" not in nginx.read_error_log()


# ---------------------------------------------------------------- wechat_ips.py


def run_wechat_ips(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    script = DEPLOY_NGINX / "wechat_ips.py"
    return subprocess.run(
        [sys.executable, str(script), *args], input=stdin, capture_output=True, text=True, timeout=30, check=False
    )


async def test_wechat_ips_output_whitelists_wechat_in_nginx(upstream, nginx_factory, session, tmp_path):
    mp = tmp_path / "mp.json"
    mp.write_text(json.dumps({"ip_list": ["101.226.103.0/25", "127.0.0.1"]}))
    wecom = tmp_path / "wecom.json"
    wecom.write_text(json.dumps({"errcode": 0, "errmsg": "ok", "ip_list": ["2001:db8::/32"]}))
    ips = tmp_path / "wechat-ips.conf"
    result = run_wechat_ips(str(mp), str(wecom), "-o", str(ips))
    assert result.returncode == 0, result.stderr
    nginx = nginx_factory(upstream_port=upstream.port, whitelist=ips)
    assert await flood(session, f"{nginx.url}{CALLBACK}") == {200: 60}


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ({"ip_list": ["1.2.3.4 wechat; } server { listen 81;"]}, "is not an IP address or CIDR"),
        ({"errcode": 40001, "errmsg": "invalid credential"}, "errcode 40001"),
        ({"ip_list": []}, "no ip_list"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_wechat_ips_bad_answer_exits_2_and_writes_nothing(tmp_path, answer, reason):
    ips = tmp_path / "wechat-ips.conf"
    result = run_wechat_ips("-o", str(ips), stdin=json.dumps(answer))
    assert result.returncode == 2
    assert reason in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not ips.exists()


def test_wechat_ips_not_json_exits_2(tmp_path):
    result = run_wechat_ips(stdin="<html>502 Bad Gateway</html>")
    assert result.returncode == 2
    assert result.stderr.startswith("wechat_ips: <stdin>: not JSON")


def test_shipped_whitelist_file_is_comments_only():
    lines = (DEPLOY_NGINX / "wechat-ips.conf").read_text(encoding="utf-8").splitlines()
    assert all(not line.strip() or line.startswith("#") for line in lines)


# ---------------------------------------------------------------- the DMZ site itself, over TLS


@pytest.fixture
def tls_files(tmp_path) -> tuple[Path, Path]:
    """A throwaway self-signed P-256 certificate for 127.0.0.1 / localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "wechat-gateway.crt", tmp_path / "wechat-gateway.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


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


async def test_dmz_site_proxies_the_callback_over_tls_with_hsts(upstream, tmp_path, tls_files, session):
    with start_dmz_nginx(tmp_path, free_port(), upstream.port, *tls_files) as nginx:
        context = client_context(tls_files[0], version=ssl.TLSVersion.TLSv1_3)
        async with session.post(f"{nginx.url}{CALLBACK}?{SIGNED_QUERY}", data=b"<xml/>", ssl=context) as resp:
            assert resp.status == 200
            assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"
            assert resp.headers["Server"] == "nginx"
    assert upstream.seen[0].path_qs == f"{CALLBACK}?{SIGNED_QUERY}"
    assert upstream.seen[0].headers["X-Forwarded-Proto"] == "https"


async def test_dmz_site_hides_everything_but_the_callback(upstream, tmp_path, tls_files, session):
    with start_dmz_nginx(tmp_path, free_port(), upstream.port, *tls_files) as nginx:
        for path in ("/metrics", "/healthz", "/readyz", "/relay/v1/lease", "/"):
            async with session.get(f"{nginx.url}{path}", ssl=client_context(tls_files[0])) as resp:
                assert resp.status == 404
    assert upstream.seen == []


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
