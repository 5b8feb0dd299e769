"""gateway.toml: the documented example loads; every mistake is one readable line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError
from contract import generate_secret
from gateway.config import GatewayConfig, load_config

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SECRET = generate_secret()

EXAMPLE = f"""
[server]
listen = "127.0.0.1:8080"

[spool]
path = "var/gateway-spool.sqlite3"

[relay]
mode = "push"
push_url = "http://127.0.0.1:8081/relay/v1/events"
pull_listen = "127.0.0.1:8090"
secrets = ["{SECRET}"]

[[accounts]]
name = "main"
kind = "mp"
app_id = "wx2c2769f8efd9abc2"
token = "spamtest"
encoding_aes_key = "{KEY}"
require_encryption = false
max_clock_skew = 300
reply_budget = 3.0
legacy_path = false
"""

WECOM = f"""
[[accounts]]
name = "corp"
kind = "wecom"
app_id = "ww5823bf96d3bd56c7"
token = "QDG6eK"
encoding_aes_key = "{KEY}"
"""


def load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_config_documented_example_loads(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE)
    main = config.account("main")
    assert main is not None
    assert (main.kind, main.app_id, main.token.reveal(), main.max_clock_skew_s, main.reply_budget_s) == (
        "mp", "wx2c2769f8efd9abc2", "spamtest", 300, 3.0,
    )
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.relay.secrets[0].reveal() == SECRET


def test_config_spool_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    assert load(tmp_path, EXAMPLE).spool.path == tmp_path / "var" / "gateway-spool.sqlite3"


def test_config_defaults_body_cap_small_and_skew_300(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE.replace("max_clock_skew = 300\n", ""))
    assert config.server.max_body_bytes == 64 * 1024
    assert config.accounts[0].max_clock_skew_s == 300


def test_config_several_accounts_mp_and_wecom(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE + WECOM)
    assert [a.name for a in config.accounts] == ["main", "corp"]
    assert config.account("corp") is not None and config.account("corp").kind == "wecom"  # type: ignore[union-attr]


def test_config_legacy_account_is_found(tmp_path: Path) -> None:
    config = load(tmp_path, EXAMPLE.replace("legacy_path = false", "legacy_path = true"))
    assert config.legacy_account() is config.accounts[0]


def test_config_token_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WXGW_TOKEN", "fromenv123")
    config = load(tmp_path, EXAMPLE.replace('token = "spamtest"', 'token = { env = "WXGW_TOKEN" }'))
    assert config.accounts[0].token.reveal() == "fromenv123"


def test_config_aes_key_from_file(tmp_path: Path) -> None:
    (tmp_path / "aes.key").write_text(KEY + "\n", encoding="utf-8")
    config = load(tmp_path, EXAMPLE.replace(f'encoding_aes_key = "{KEY}"', 'encoding_aes_key = { file = "aes.key" }'))
    assert config.accounts[0].encoding_aes_key is not None
    assert config.accounts[0].encoding_aes_key.reveal() == KEY


def test_config_repr_never_shows_secrets(tmp_path: Path) -> None:
    text = repr(load(tmp_path, EXAMPLE))
    assert "spamtest" not in text and KEY not in text and SECRET not in text


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("max_clock_skew = 300", "max_clok_skew = 300", "accounts[0].max_clok_skew: unknown key"),
        ('kind = "mp"', 'kind = "official"', "accounts[0].kind: must be one of mp, wecom (got 'official')"),
        ('token = "spamtest"', 'token = "a b"', "accounts[0].token: must be 3-32 letters or digits (WeChat's rule)"),
        (f'encoding_aes_key = "{KEY}"', 'encoding_aes_key = "short"', "accounts[0].encoding_aes_key: must be 43"),
        ("reply_budget = 3.0", "reply_budget = 6.0", "accounts[0].reply_budget: must be at most 4.5"),
        ('name = "main"', 'name = "has space"', "accounts[0].name: must be 1-32 characters"),
        ('listen = "127.0.0.1:8080"', 'listen = "8080"', "server.listen: must be host:port"),
        ('mode = "push"', 'mode = "carrier-pigeon"', "relay.mode: must be one of push, pull"),
        (f'secrets = ["{SECRET}"]', 'secrets = ["hunter2"]', "relay.secrets[0]: relay secret must start with whsec_"),
        ("require_encryption = false", 'require_encryption = "no"', "accounts[0].require_encryption: must be true"),
    ],
)
def test_config_mistake_is_reported_with_its_dotted_key(tmp_path: Path, old: str, new: str, problem: str) -> None:
    assert EXAMPLE.count(old) == 1
    found = problems(tmp_path, EXAMPLE.replace(old, new))
    assert any(p.startswith(problem) for p in found), found


def test_config_wecom_without_aes_key_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, EXAMPLE + WECOM.replace(f'encoding_aes_key = "{KEY}"\n', ""))
    assert any("accounts[1].encoding_aes_key: is required for WeCom" in p for p in found)


def test_config_require_encryption_without_key_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE.replace(f'encoding_aes_key = "{KEY}"\n', "").replace(
        "require_encryption = false", "require_encryption = true"
    )
    assert any("is required when require_encryption = true" in p for p in problems(tmp_path, text))


def test_config_legacy_path_on_two_accounts_is_refused(tmp_path: Path) -> None:
    second = EXAMPLE[EXAMPLE.index("[[accounts]]"):].replace('name = "main"', 'name = "second"')
    text = (EXAMPLE + second).replace("legacy_path = false", "legacy_path = true")
    assert "accounts: legacy_path = true may be set on one account only" in problems(tmp_path, text)


def test_config_duplicate_account_names_are_refused(tmp_path: Path) -> None:
    text = EXAMPLE + EXAMPLE[EXAMPLE.index("[[accounts]]"):]
    assert "accounts: name 'main' is used twice" in problems(tmp_path, text)


def test_config_push_without_url_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE.replace('push_url = "http://127.0.0.1:8081/relay/v1/events"\n', "")
    assert 'relay.push_url: is required when mode = "push"' in problems(tmp_path, text)


def test_config_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = EXAMPLE.replace('kind = "mp"', 'kind = "x"').replace("[server]", "[server]\nport = 1")
    assert len(problems(tmp_path, text)) == 2


def test_config_invalid_toml_is_one_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "[server\n")
    assert len(found) == 1 and "invalid TOML" in found[0]
