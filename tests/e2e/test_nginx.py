"""The DMZ nginx rules, run for real: deploy/nginx's snippets in the loopback variant, in front of
a gateway stub that records what gets through."""

import re
import time

import pytest

from tests.e2e.nginx import free_port
from tests.e2e.stubs import CALLBACK, CAP, flood, raw_request

pytestmark = pytest.mark.e2e

SIGNED_QUERY = "signature=5f2c&timestamp=1700000000&nonce=12%2034&echostr=hello"


# ---------------------------------------------------------------- what is proxied


async def test_callback_get_reaches_gateway_with_query_string_intact(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.get(f"{nginx.url}{CALLBACK}?{SIGNED_QUERY}") as resp:
        assert resp.status == 200
        assert await resp.text() == "success"
    assert [(s.method, s.path_qs) for s in gateway_stub.seen] == [("GET", f"{CALLBACK}?{SIGNED_QUERY}")]


async def test_callback_post_reaches_gateway_with_body_byte_for_byte(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    body = "<xml><Content><![CDATA[你好 & <bye>]]></Content></xml>".encode()
    async with http.post(f"{nginx.url}{CALLBACK}?{SIGNED_QUERY}", data=body) as resp:
        assert resp.status == 200
    assert gateway_stub.seen[0].method == "POST"
    assert gateway_stub.seen[0].body == body


async def test_callback_body_at_the_cap_is_proxied(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.post(f"{nginx.url}{CALLBACK}", data=b"x" * CAP) as resp:
        assert resp.status == 200
    assert len(gateway_stub.seen[0].body) == CAP


async def test_callback_body_over_the_cap_is_refused_413(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.post(f"{nginx.url}{CALLBACK}", data=b"x" * (CAP + 1)) as resp:
        assert resp.status == 413
    assert gateway_stub.seen == []


async def test_callback_headers_name_the_peer_not_a_client_supplied_address(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.get(f"{nginx.url}{CALLBACK}", headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
        assert resp.status == 200
    headers = gateway_stub.seen[0].headers
    assert headers["X-Real-IP"] == "127.0.0.1"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-Id"])


async def test_callback_behind_trusted_balancer_names_the_forwarded_client(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, real_ip_from=["127.0.0.1"])
    async with http.get(f"{nginx.url}{CALLBACK}", headers={"X-Forwarded-For": "203.0.113.9"}) as resp:
        assert resp.status == 200
    assert gateway_stub.seen[0].headers["X-Real-IP"] == "203.0.113.9"
    assert gateway_stub.seen[0].headers["X-Forwarded-For"] == "203.0.113.9"


async def test_callback_path_reaches_gateway_normalised(gateway_stub, nginx_factory):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    assert await raw_request(nginx.port, "/wechat/%6Dain/./callback?x=%2F1") == 200
    assert gateway_stub.seen[0].path_qs == "/wechat/main/callback?x=%2F1"


async def test_callback_account_names_of_every_allowed_character_are_proxied(gateway_stub, nginx_factory):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    name = "Az09_-" + "a" * 26  # 32 characters
    assert await raw_request(nginx.port, f"/wechat/{name}/callback") == 200
    assert gateway_stub.seen[0].path_qs == f"/wechat/{name}/callback"


async def test_upstream_connections_are_kept_alive(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    for _ in range(5):
        async with http.get(f"{nginx.url}{CALLBACK}") as resp:
            assert resp.status == 200
    assert len({s.peer for s in gateway_stub.seen}) == 1


async def test_legacy_path_is_proxied_when_enabled(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, legacy=True)
    async with http.post(f"{nginx.url}/console/user_center/weixin/mp/callback/?{SIGNED_QUERY}", data=b"<xml/>") as r:
        assert r.status == 200
    assert gateway_stub.seen[0].path_qs == f"/console/user_center/weixin/mp/callback/?{SIGNED_QUERY}"


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
async def test_paths_other_than_the_callback_are_404_from_nginx(gateway_stub, nginx_factory, target):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    assert await raw_request(nginx.port, target) == 404
    assert await raw_request(nginx.port, target, method="POST") == 404
    assert gateway_stub.seen == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
async def test_callback_methods_other_than_get_and_post_are_405(gateway_stub, nginx_factory, http, method):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.request(method, f"{nginx.url}{CALLBACK}") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET, POST"
    assert gateway_stub.seen == []


@pytest.mark.parametrize("path", [CALLBACK, "/metrics"])
async def test_server_header_carries_no_version(gateway_stub, nginx_factory, http, path):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.get(f"{nginx.url}{path}") as resp:
        assert resp.headers["Server"] == "nginx"


# ---------------------------------------------------------------- rate limit


async def test_rate_limit_throttles_a_client_not_on_the_whitelist(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, whitelist=[])
    statuses = await flood(http, f"{nginx.url}{CALLBACK}")
    assert statuses[429] > 0
    assert len(gateway_stub.seen) == statuses[200] < 60


async def test_rate_limit_spares_a_whitelisted_client(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, whitelist=["127.0.0.0/8"])
    assert await flood(http, f"{nginx.url}{CALLBACK}") == {200: 60}


async def test_rate_limit_behind_balancer_spares_whitelisted_forwarded_client(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, whitelist=["203.0.113.7"], real_ip_from=["127.0.0.1"])
    url = f"{nginx.url}{CALLBACK}"
    assert await flood(http, url, **{"X-Forwarded-For": "203.0.113.7"}) == {200: 60}
    assert (await flood(http, url, **{"X-Forwarded-For": "198.51.100.1"}))[429] > 0


async def test_rate_limit_ignores_a_forged_whitelisted_forwarded_address(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, whitelist=["203.0.113.7"])
    statuses = await flood(http, f"{nginx.url}{CALLBACK}", **{"X-Forwarded-For": "203.0.113.7"})
    assert statuses[429] > 0


# ---------------------------------------------------------------- timeouts and failures


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_slow_gateway_is_answered_504_without_trying_another_replica(
    gateway_stub, second_gateway_stub, nginx_factory, http, method
):
    gateway_stub.delay_s = second_gateway_stub.delay_s = 3.0
    nginx = nginx_factory(upstream_port=[gateway_stub.port, second_gateway_stub.port], proxy_timeout_s=1.0)
    started = time.monotonic()
    async with http.request(method, f"{nginx.url}{CALLBACK}", data=b"<xml/>") as resp:
        assert resp.status == 504
    assert time.monotonic() - started < 2.5
    assert len(gateway_stub.seen) + len(second_gateway_stub.seen) == 1


async def test_gateway_down_is_answered_502(nginx_factory, http):
    nginx = nginx_factory(upstream_port=free_port())
    async with http.post(f"{nginx.url}{CALLBACK}", data=b"<xml/>") as resp:
        assert resp.status == 502
        assert resp.headers["Server"] == "nginx"


# ---------------------------------------------------------------- logs


async def test_access_log_omits_the_query_string(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port)
    async with http.get(f"{nginx.url}{CALLBACK}?echostr=ECHO-SECRET&openid=oPersonal123") as resp:
        assert resp.status == 200
    log = nginx.read_access_log(min_lines=1)
    assert f"GET {CALLBACK} HTTP/1.1" in log
    assert "ECHO-SECRET" not in log
    assert "oPersonal123" not in log


async def test_throttled_requests_leave_no_query_string_in_the_error_log(gateway_stub, nginx_factory, http):
    nginx = nginx_factory(upstream_port=gateway_stub.port, whitelist=[])
    statuses = await flood(http, f"{nginx.url}{CALLBACK}?openid=oPersonal123")
    assert statuses[429] > 0
    nginx.read_access_log(min_lines=60)  # every request finished, so every error line is written
    assert "oPersonal123" not in nginx.read_error_log()
