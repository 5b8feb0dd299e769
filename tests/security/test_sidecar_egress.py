"""No request to the sidecar chooses where the sidecar connects (SSRF).

The sidecar's outbound hosts are configuration only: ``[wechat] mp_api``/``wecom_api``,
``[binding] bk_login_url`` and, in pull mode, ``[relay] pull_url``. Here a canary server's URL
is planted everywhere a caller or a relayed event can put text — the template click-through
``url``, message fields, a ``Host`` header, WeCom login parameters, event keys — over a workload
of sends, token reads, binding and relayed events against the WeChat emulator. Recorded at the
socket (tests/security/egress.py): every connection goes to the emulator, none to the canary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from contract import PUSH_PATH, RelaySigner, dump_json, make_envelope
from devtools.emulator import run_emulator
from sidecar.app import create_app
from sidecar.config import load_config
from tests.security.egress import Connections
from tests.security.servers import Recorder
from tests.sidecar.esb.conftest import AUTH, Clock
from tests.sidecar.esb.test_emulator import EMULATED
from tests.sidecar.helpers import RELAY_SECRET, write_config

AppClient = TestClient[web.Request, web.Application]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield


class Live:
    def __init__(self, client: AppClient, emulator: str, clock: Clock) -> None:
        self.client = client
        self.emulator = URL(emulator)
        self.clock = clock

    async def api(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.client.request(method, path, **kwargs)
        answer: dict[str, Any] = await response.json(content_type=None)
        return answer

    async def event(self, message: dict[str, str]) -> None:
        envelope = make_envelope("main", "mp", "safe", message, datetime(2026, 1, 1, tzinfo=UTC))
        body = dump_json({"events": [envelope]})
        headers = RelaySigner([RELAY_SECRET], clock=self.clock).headers(body)
        response = await self.client.post(PUSH_PATH, data=body, headers=headers)
        assert response.status == 200


@pytest.fixture
async def live(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Live]:
    async with run_emulator(EMULATED) as emu:
        wechat = f'[wechat]\nmp_api = "{emu.base_url}"\nwecom_api = "{emu.base_url}"\ntimeout_s = 5\n'
        config = load_config(write_config(tmp_path, replace={"wechat": wechat}))
        clock = Clock()
        client = await aiohttp_client(create_app(config, clock=clock))  # the product's own WeChat session
        yield Live(client, emu.base_url, clock)


async def test_sidecar_connects_only_to_configured_hosts_whatever_requests_carry(
    live: Live, recorder: Recorder, connections: Connections
) -> None:
    canary = recorder.url
    host_header = {"Host": URL(canary).raw_authority, "X-Forwarded-Host": URL(canary).raw_authority}
    data = {"heading": f"see {canary}/h", "message": f"{canary}/m", "remark": canary, "date": canary}
    sends = [
        ("send_weixin", {"receiver": "o-alice", "url": f"{canary}/click", "data": data}),
        ("send_weixin", {"receiver": "bob", "account": "corp", "wx_qy_agentid": "1000002", "data": data}),
        ("send_mp_weixin", {"receiver": f"{canary}/openid", "url": canary, "data": data}),
        ("send_qy_weixin", {"receiver": "bob", "content": canary, "msgtype": "textcard", "url": canary}),
    ]
    for component, body in sends:
        await live.api("POST", f"/api/c/compapi/cmsi/{component}/", json={**AUTH, **body}, headers=host_header)
    assert (await live.api("GET", "/api/c/compapi/weixin/get_token/", params=AUTH, headers=host_header))["result"]
    await live.api("POST", "/api/v1/tokens/main/refresh", json=AUTH, headers=host_header)

    link = await live.api("POST", "/api/v1/binding-links", json={**AUTH, "username": "carol", "callback": canary})
    await live.client.get(URL(link["data"]["url"]).path, headers=host_header)
    await live.client.get("/bind/", params={"next": canary}, headers=host_header)
    qr = await live.api("GET", "/console/user_center/weixin/mp/get_qrcode/", params={"url": canary})
    scene = URL(qr["content"]).path.rsplit("/", 1)[-1]
    assert qr["result"] and scene
    await live.event({"ToUserName": "gh_test", "FromUserName": f"{canary}/o", "CreateTime": "1700000000",
                      "MsgType": "event", "Event": "SCAN", "EventKey": canary, "Ticket": canary})
    await live.event({"ToUserName": "gh_test", "FromUserName": "o-carol", "CreateTime": "1700000000",
                      "MsgType": "text", "Content": canary, "MsgId": "77", "Url": canary})
    corp_link = await live.api("POST", "/api/v1/binding-links", json={**AUTH, "username": "dave", "account": "corp"})
    await live.client.get(URL(corp_link["data"]["url"]).path)
    await live.api("GET", "/console/user_center/weixin/qy/get_login_url/", params={"redirect_uri": canary})
    await live.client.get(
        "/console/user_center/weixin/qy/login_callback/",
        params={"code": canary, "state": "0" * 32, "redirect_uri": canary},
        headers=host_header,
    )

    assert recorder.seen == []
    emulator = (str(live.emulator.host), int(live.emulator.port or 0))
    assert connections.to(excluding={(str(live.client.server.host), int(live.client.port))}) == {emulator}
