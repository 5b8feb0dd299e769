import base64
import hashlib
import hmac

import pytest

from contract import RelaySigner, RelayVerifier, SignatureError, generate_secret, secret_problem

NOW = 1_800_000_000.0


def clock():
    return NOW


def test_generated_secret_is_valid():
    assert secret_problem(generate_secret()) is None


@pytest.mark.parametrize("secret", ["abc", "whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()])
def test_secret_problem_names_bad_secrets(secret):
    assert secret_problem(secret)


def test_signature_matches_standard_webhooks_definition():
    secret = generate_secret()
    headers = RelaySigner([secret], clock=clock).headers(b'{"a":1}')
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + b'{"a":1}'
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v1," + expected
    assert headers["webhook-timestamp"] == str(int(NOW))


def test_verify_accepts_fresh_signed_request():
    secret = generate_secret()
    body = b'{"events":[]}'
    RelayVerifier([secret], clock=clock).verify(body, RelaySigner([secret], clock=clock).headers(body))


def test_verify_accepts_any_configured_secret_for_rotation():
    old, new = generate_secret(), generate_secret()
    body = b"{}"
    RelayVerifier([new, old], clock=clock).verify(body, RelaySigner([old], clock=clock).headers(body))


def test_verify_rejects_replayed_webhook_id():
    secret = generate_secret()
    verifier = RelayVerifier([secret], clock=clock)
    headers = RelaySigner([secret], clock=clock).headers(b"{}")
    verifier.verify(b"{}", headers)
    with pytest.raises(SignatureError, match="replay"):
        verifier.verify(b"{}", headers)


def test_verify_rejects_tampered_body():
    secret = generate_secret()
    headers = RelaySigner([secret], clock=clock).headers(b'{"a":1}')
    with pytest.raises(SignatureError, match="no matching"):
        RelayVerifier([secret], clock=clock).verify(b'{"a":2}', headers)


def test_verify_rejects_stale_timestamp():
    secret = generate_secret()
    headers = RelaySigner([secret], clock=lambda: NOW - 301).headers(b"{}")
    with pytest.raises(SignatureError, match="window"):
        RelayVerifier([secret], clock=clock).verify(b"{}", headers)


def test_verify_rejects_wrong_secret():
    headers = RelaySigner([generate_secret()], clock=clock).headers(b"{}")
    with pytest.raises(SignatureError):
        RelayVerifier([generate_secret()], clock=clock).verify(b"{}", headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "x", "webhook-timestamp": str(int(NOW))},
        {"webhook-id": "x", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "x", "webhook-timestamp": str(int(NOW)), "webhook-signature": "garbage"},
        {"webhook-id": "x", "webhook-timestamp": str(int(NOW)), "webhook-signature": "v1,@@@"},
    ],
)
def test_verify_rejects_malformed_headers_with_signature_error(headers):
    with pytest.raises(SignatureError):
        RelayVerifier([generate_secret()], clock=clock).verify(b"{}", headers)


def test_signer_repr_hides_secrets():
    secret = generate_secret()
    assert secret not in repr(RelaySigner([secret]))
    assert secret not in repr(RelayVerifier([secret]))
