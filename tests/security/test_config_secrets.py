"""Configuration: secrets never show in a repr or a config error; configured URLs are http(s) only.

Every secret is set in each of its three forms (literal, ``{ env = … }``, ``{ file = … }``), then
the loaded config is printed every way a log line or a traceback could print it. Config errors
(what ``--check`` prints) name the key and the rule, never the offending secret value.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

import pytest

from common.config import ConfigError
from contract import generate_secret
from gateway.config import load_config as load_gateway
from sidecar.config import load_config as load_sidecar

RELAY = generate_secret()
VALUES = {
    "relay": RELAY,
    "mp_token": "tok" + secrets.token_hex(8),
    "mp_aes": secrets.token_hex(21) + "a",  # 43 characters [0-9a-f]
    "corp_token": "corp" + secrets.token_hex(8),
    "corp_aes": secrets.token_hex(21) + "b",
    "app_secret": secrets.token_hex(16),
    "corp_secret": secrets.token_urlsafe(32),
    "client_secret": secrets.token_urlsafe(24),
}


def gateway_toml(push_url: str = "http://10.0.0.2:8081/relay/v1/events") -> str:
    return f"""
[server]
listen = "127.0.0.1:8080"
[spool]
path = "spool.sqlite3"
[relay]
mode = "push"
push_url = "{push_url}"
secrets = [{{ file = "relay.secret" }}]
[[accounts]]
name = "main"
kind = "mp"
app_id = "wx0000000000000001"
token = "{VALUES['mp_token']}"
encoding_aes_key = {{ env = "SEC_TEST_MP_AES" }}
[[accounts]]
name = "corp"
kind = "wecom"
app_id = "ww0000000000000001"
token = {{ env = "SEC_TEST_CORP_TOKEN" }}
encoding_aes_key = {{ file = "corp.aes" }}
"""


def sidecar_toml(**urls: str) -> str:
    wechat = {"mp_api": "https://api.weixin.qq.com", "wecom_api": "https://qyapi.weixin.qq.com", **urls}
    public_url = wechat.pop("public_url", "https://paas.example.com")
    pull_url = wechat.pop("pull_url", "http://10.0.0.1:8090")
    bk_login_url = wechat.pop("bk_login_url", "http://paas.example.com/login/accounts/is_login/")
    return f"""
[server]
listen = "127.0.0.1:8081"
public_url = "{public_url}"
[store]
url = "sqlite:///sidecar.sqlite3"
[relay]
mode = "pull"
pull_url = "{pull_url}"
secrets = ["{RELAY}"]
[wechat]
mp_api = "{wechat['mp_api']}"
wecom_api = "{wechat['wecom_api']}"
[binding]
identity = "bk_login"
bk_login_url = "{bk_login_url}"
[[accounts]]
name = "main"
kind = "mp"
app_id = "wx0000000000000001"
app_secret = {{ env = "SEC_TEST_APP_SECRET" }}
template_id = "t"
default = true
[[accounts]]
name = "corp"
kind = "wecom"
corp_id = "ww0000000000000001"
corp_secret = {{ file = "corp.secret" }}
agent_id = 1000002
[[clients]]
app_code = "bk_paas"
app_secret = "{VALUES['client_secret']}"
may_get_token = true
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "relay.secret").write_text(VALUES["relay"] + "\n", encoding="utf-8")
    (tmp_path / "corp.aes").write_text(VALUES["corp_aes"], encoding="utf-8")
    (tmp_path / "corp.secret").write_text(VALUES["corp_secret"], encoding="utf-8")
    monkeypatch.setenv("SEC_TEST_MP_AES", VALUES["mp_aes"])
    monkeypatch.setenv("SEC_TEST_CORP_TOKEN", VALUES["corp_token"])
    monkeypatch.setenv("SEC_TEST_APP_SECRET", VALUES["app_secret"])
    return tmp_path


def written(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def every_printing(config: object) -> str:
    """Every way a log line, an f-string or a traceback could print the config and its parts."""
    parts = [repr(config), str(config), f"{config}", f"{config!r}", repr(dataclasses.asdict(config))]  # type: ignore[call-overload]
    for section in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, section.name)
        parts += [repr(value), str(value)]
    return "\n".join(parts)


def shown(text: str) -> list[str]:
    return sorted(name for name, value in VALUES.items() if value in text)


def test_gateway_config_printed_any_way_shows_no_secret(folder: Path) -> None:
    config = load_gateway(written(folder, "gateway.toml", gateway_toml()))
    assert config.account("main") is not None  # loaded, every secret resolved
    assert shown(every_printing(config)) == []


def test_sidecar_config_printed_any_way_shows_no_secret(folder: Path) -> None:
    config = load_sidecar(written(folder, "sidecar.toml", sidecar_toml()))
    assert len(config.accounts) == 2
    assert shown(every_printing(config)) == []


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (f'token = "{VALUES["mp_token"]}"', 'token = "not allowed: s3cr3t-token-value!"'),
        ('encoding_aes_key = { env = "SEC_TEST_MP_AES" }', 'encoding_aes_key = "s3cr3t-key-too-short"'),
        ('secrets = [{ file = "relay.secret" }]', 'secrets = ["whsec_s3cr3t!!not-base64"]'),
        ('secrets = [{ file = "relay.secret" }]', 'secrets = ["s3cr3t-without-the-prefix"]'),
    ],
)
def test_gateway_config_error_never_echoes_the_secret(folder: Path, good: str, bad: str) -> None:
    text = gateway_toml()
    assert good in text
    with pytest.raises(ConfigError) as caught:
        load_gateway(written(folder, "gateway.toml", text.replace(good, bad, 1)))
    assert caught.value.problems  # refused, with a reason …
    assert "s3cr3t" not in str(caught.value)  # … that does not repeat the value


@pytest.mark.parametrize(
    "bad", ['secrets = ["whsec_s3cr3t!!not-base64"]', 'secrets = ["whsec_czNjcjN0"]', 'secrets = ["s3cr3t"]']
)
def test_sidecar_config_error_never_echoes_the_secret(folder: Path, bad: str) -> None:
    text = sidecar_toml().replace(f'secrets = ["{RELAY}"]', bad)
    with pytest.raises(ConfigError) as caught:
        load_sidecar(written(folder, "sidecar.toml", text))
    assert caught.value.problems and "s3cr3t" not in str(caught.value) and "czNjcjN0" not in str(caught.value)


NOT_HTTP = ("file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "ftp://10.0.0.1/", "unix:/run/x.sock", "//evil")


@pytest.mark.parametrize("url", NOT_HTTP)
def test_gateway_push_url_must_be_http_or_https(folder: Path, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_gateway(written(folder, "gateway.toml", gateway_toml(push_url=url)))
    assert caught.value.problems == ["relay.push_url: must be an http:// or https:// URL"]


@pytest.mark.parametrize("key", ["mp_api", "wecom_api", "public_url", "pull_url", "bk_login_url"])
@pytest.mark.parametrize("url", NOT_HTTP)
def test_sidecar_configured_urls_must_be_http_or_https(folder: Path, key: str, url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_sidecar(written(folder, "sidecar.toml", sidecar_toml(**{key: url})))
    [problem] = caught.value.problems
    assert problem.endswith(f"{key}: must be an http:// or https:// URL (got {url!r})")
