"""deploy/nginx/wechat_ips.py: getcallbackip answers in, nginx's wechat-ips.conf out, nothing else."""

import json
import subprocess
import sys

import pytest

from tests.e2e.nginx import DEPLOY_NGINX
from tests.e2e.stubs import CALLBACK, flood

pytestmark = pytest.mark.e2e


def run_wechat_ips(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    script = DEPLOY_NGINX / "wechat_ips.py"
    return subprocess.run(
        [sys.executable, str(script), *args], input=stdin, capture_output=True, text=True, timeout=30, check=False
    )


async def test_wechat_ips_output_whitelists_wechat_in_nginx(gateway_stub, nginx_factory, http, tmp_path):
    mp = tmp_path / "mp.json"
    mp.write_text(json.dumps({"ip_list": ["101.226.103.0/25", "127.0.0.1"]}))
    wecom = tmp_path / "wecom.json"
    wecom.write_text(json.dumps({"errcode": 0, "errmsg": "ok", "ip_list": ["2001:db8::/32"]}))
    ips = tmp_path / "wechat-ips.conf"
    result = run_wechat_ips(str(mp), str(wecom), "-o", str(ips))
    assert result.returncode == 0, result.stderr
    nginx = nginx_factory(upstream_port=gateway_stub.port, whitelist=ips)
    assert await flood(http, f"{nginx.url}{CALLBACK}") == {200: 60}


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
