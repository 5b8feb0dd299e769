"""Pushes to an https callback URL (nginx with a test certificate in the end-to-end suite)."""

import dataclasses
import ssl

import pytest
from aiohttp import web

from devtools.emulator import create_app
from tests.devtools.conftest import make_config
from tests.tlscert import write_self_signed


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    folder = tmp_path_factory.mktemp("tls")
    return write_self_signed(folder / "cert.pem", folder / "key.pem")


@pytest.fixture
async def https_callback(aiohttp_server, certificate):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def success(request):
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/cb", success)
    server = await aiohttp_server(app, ssl=context)
    return str(server.make_url("/cb"))


async def follow_status(aiohttp_client, config, clock):
    emu = await aiohttp_client(create_app(config, clock=clock))
    return (await (await emu.post("/_emu/users/dave/follow", json={})).json())["status"]


async def test_https_callback_with_untrusted_certificate_fails(aiohttp_client, https_callback, clock):
    assert await follow_status(aiohttp_client, make_config(https_callback), clock) == "failed"


async def test_https_callback_trusted_through_ca_file(aiohttp_client, https_callback, certificate, clock):
    config = dataclasses.replace(make_config(https_callback), callback_ca_file=str(certificate[0]))
    assert await follow_status(aiohttp_client, config, clock) == "acknowledged"


async def test_https_callback_without_verification(aiohttp_client, https_callback, clock):
    config = dataclasses.replace(make_config(https_callback), callback_tls_verify=False)
    assert await follow_status(aiohttp_client, config, clock) == "acknowledged"
