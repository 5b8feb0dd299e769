"""Pushes to an https callback URL (nginx with a test certificate in the end-to-end suite)."""

import dataclasses
import datetime
import ipaddress
import ssl

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.emulator import create_app
from tests.devtools.conftest import make_config


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulator test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


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
