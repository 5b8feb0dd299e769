"""Every outbound call of the sidecar gives up on a peer that accepts and never answers.

A stalled peer (a black-holed route, a hung WeChat proxy, a paused gateway) must cost a bounded
wait, not a task or a connection held forever. The peer here is a TCP listener that accepts and
then says nothing. (The WeChat client: tests/sidecar/wechat/test_api.py::test_call_without_answer_times_out_for_real;
the gateway's push relay: tests/gateway/relay/test_push.py::test_push_timeout_is_retried.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from sidecar.app import default_http_session
from sidecar.binding import identity
from sidecar.binding.errors import LoginUnavailable
from sidecar.config import load_config
from sidecar.errors import PullError, WeChatUnavailable
from sidecar.metrics import SidecarMetrics
from sidecar.relay.inbox import Dispatcher
from sidecar.relay.transport import PullClient
from sidecar.store import SqliteStore, open_sqlite_store
from sidecar.wechat.api import WeChatApi
from tests.sidecar.helpers import config_text, write_config

BOUND_S = 2.0  # far above the timeouts configured below, far below "forever"


@pytest.fixture
async def silent_peer() -> AsyncIterator[str]:
    """``http://127.0.0.1:<port>`` of a listener that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await open_sqlite_store(tmp_path / "store.sqlite3")
    yield opened
    await opened.close()


async def test_pull_client_gives_up_on_a_silent_gateway(silent_peer: str, tmp_path: Path, store: SqliteStore) -> None:
    relay = f'mode = "pull"\npull_url = "{silent_peer}"\ntimeout_s = 0.2\nlease_wait_s = 0'
    config = load_config(write_config(tmp_path, config_text().replace('mode = "push"', relay)))
    async with aiohttp.ClientSession(trust_env=False) as session:
        client = PullClient(session, config.relay, Dispatcher(SidecarMetrics()), store, SidecarMetrics())
        started = time.monotonic()
        with pytest.raises(PullError, match="no answer within"):
            await client.poll_once()
    assert time.monotonic() - started < BOUND_S


async def test_wechat_session_of_the_app_gives_up_on_a_silent_api(
    silent_peer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    wechat = f'[wechat]\nmp_api = "{silent_peer}"\nwecom_api = "{silent_peer}"\ntimeout_s = 0.2\n'
    config = load_config(write_config(tmp_path, replace={"wechat": wechat}))
    async with default_http_session(config) as session:
        started = time.monotonic()
        with pytest.raises(WeChatUnavailable, match="no answer"):
            await WeChatApi(session, config.wechat, SidecarMetrics()).template_send("TOKEN", {"touser": "o"})
    assert time.monotonic() - started < BOUND_S


async def test_bk_login_gives_up_on_a_silent_login_service(
    silent_peer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "LOGIN_TIMEOUT_S", 0.2)
    async with aiohttp.ClientSession(trust_env=False) as session:
        login = identity.BkLogin(silent_peer + "/login/accounts/is_login/", session)
        started = time.monotonic()
        with pytest.raises(LoginUnavailable, match="TimeoutError"):
            await login.username("a-bk-token")
    assert time.monotonic() - started < BOUND_S
