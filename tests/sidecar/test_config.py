"""sidecar.toml as interfaces.md defines it: strict keys, secrets from env/file, cross-field rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ConfigError
from sidecar.config import TEMPLATE_PRESETS, MpAccount, WecomAccount, load_config
from tests.sidecar.helpers import CLIENT, MP_SECRET, WECOM_ACCOUNT, config_text, write_config


def problems(tmp_path: Path, **kwargs: object) -> list[str]:
    path = write_config(tmp_path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_load_config_valid_file_builds_every_section(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8081)
    assert config.server.public_url == "http://paas.example.com"
    assert config.store.path == tmp_path / "var" / "sidecar.sqlite3"
    assert config.relay.mode == "push"
    assert config.wechat.timeout_s == 2.0
    assert [a.name for a in config.accounts] == ["main", "corp"]
    assert config.default_account().name == "main"
    assert config.client("bk_paas") is not None
    assert config.binding.identity == "link"
    assert config.audit.store_bodies is False


def test_load_config_mp_account_defaults_to_stable_token_and_post_2023_fields(tmp_path: Path) -> None:
    account = load_config(write_config(tmp_path)).account("main")
    assert isinstance(account, MpAccount)
    assert account.token_mode == "stable"
    assert account.fields() == {"thing1": "heading", "thing2": "message", "time3": "date"}


def test_load_config_bk_legacy_preset_maps_first_keywords_remark(tmp_path: Path) -> None:
    mp = config_text().replace('default = true\n', 'default = true\ntemplate_fields = "bk_legacy"\n', 1)
    account = load_config(write_config(tmp_path, mp)).account("main")
    assert isinstance(account, MpAccount)
    assert account.template_fields == TEMPLATE_PRESETS["bk_legacy"]
    assert account.fields()["first"] == "heading"


def test_load_config_template_fields_table_is_used_as_written(tmp_path: Path) -> None:
    text = config_text().replace(
        'default = true\n', 'default = true\ntemplate_fields = { thing5 = "message", time2 = "date" }\n', 1
    )
    account = load_config(write_config(tmp_path, text)).account("main")
    assert isinstance(account, MpAccount)
    assert account.fields() == {"thing5": "message", "time2": "date"}


def test_load_config_template_fields_unknown_source_is_a_problem(tmp_path: Path) -> None:
    text = config_text().replace('default = true\n', 'default = true\ntemplate_fields = { thing1 = "title" }\n', 1)
    found = problems(tmp_path, text=text)
    assert any(p.startswith("accounts[0].template_fields.thing1: must be one of heading") for p in found)


def test_load_config_template_fields_unknown_preset_is_a_problem(tmp_path: Path) -> None:
    text = config_text().replace('default = true\n', 'default = true\ntemplate_fields = "fancy"\n', 1)
    assert any("unknown preset 'fancy'" in p for p in problems(tmp_path, text=text))


def test_load_config_unknown_key_is_reported_with_dotted_name(tmp_path: Path) -> None:
    text = config_text().replace("timeout_s = 2", "timeout_s = 2\ntimeuot = 3")
    assert problems(tmp_path, text=text) == ["wechat.timeuot: unknown key"]


def test_load_config_wecom_only_key_on_mp_account_is_unknown(tmp_path: Path) -> None:
    text = config_text().replace('default = true\n', 'default = true\nagent_id = 5\n', 1)
    assert problems(tmp_path, text=text) == ["accounts[0].agent_id: unknown key"]


def test_load_config_secret_from_env_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WX_APP_SECRET_TEST", "from-env")
    text = config_text().replace(f'app_secret = "{MP_SECRET}"', 'app_secret = { env = "WX_APP_SECRET_TEST" }')
    account = load_config(write_config(tmp_path, text)).account("main")
    assert isinstance(account, MpAccount)
    assert account.app_secret.reveal() == "from-env"


def test_load_config_secret_from_file_is_resolved_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "corp.secret").write_text("from-file\n", encoding="utf-8")
    text = config_text().replace('corp_secret = "corp-secret-for-tests"', 'corp_secret = { file = "corp.secret" }')
    account = load_config(write_config(tmp_path, text)).account("corp")
    assert isinstance(account, WecomAccount)
    assert account.corp_secret.reveal() == "from-file"


def test_load_config_missing_env_secret_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    text = config_text().replace(f'app_secret = "{MP_SECRET}"', 'app_secret = { env = "NOPE_SECRET" }')
    assert problems(tmp_path, text=text) == ["accounts[0].app_secret: environment variable NOPE_SECRET is not set"]


def test_config_repr_never_shows_secrets(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert MP_SECRET not in repr(config)
    assert "corp-secret-for-tests" not in repr(config)


def test_load_config_two_accounts_without_default_is_a_problem(tmp_path: Path) -> None:
    text = config_text().replace("default = true\n", "", 1)
    assert problems(tmp_path, text=text) == ["accounts: exactly one account must set default = true (found: none)"]


def test_load_config_two_defaults_is_a_problem(tmp_path: Path) -> None:
    text = config_text(replace={"wecom": WECOM_ACCOUNT + "default = true\n"})
    assert problems(tmp_path, text=text) == [
        "accounts: exactly one account must set default = true (found: main, corp)"
    ]


def test_load_config_single_account_is_default_without_flag(tmp_path: Path) -> None:
    text = config_text(drop=("mp",))
    config = load_config(write_config(tmp_path, text))
    assert config.default_account().name == "corp"
    assert config.default_of_kind("mp") is None


def test_default_of_kind_falls_back_to_first_account_of_that_kind(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert config.default_of_kind("mp").name == "main"  # type: ignore[union-attr]
    assert config.default_of_kind("wecom").name == "corp"  # type: ignore[union-attr]


def test_load_config_duplicate_account_names_are_a_problem(tmp_path: Path) -> None:
    text = config_text(replace={"wecom": WECOM_ACCOUNT.replace('name = "corp"', 'name = "main"')})
    assert "accounts: name 'main' is used twice" in problems(tmp_path, text=text)


def test_load_config_duplicate_client_codes_are_a_problem(tmp_path: Path) -> None:
    assert problems(tmp_path, extra=CLIENT) == ["clients: app_code 'bk_paas' is used twice"]


def test_load_config_pull_mode_requires_pull_url(tmp_path: Path) -> None:
    text = config_text().replace('mode = "push"', 'mode = "pull"')
    assert problems(tmp_path, text=text) == ['relay.pull_url: is required when mode = "pull"']


def test_load_config_bad_relay_secret_is_a_problem(tmp_path: Path) -> None:
    text = config_text().replace('secrets = ["whsec_', 'secrets = ["nope_')
    assert problems(tmp_path, text=text) == ["relay.secrets[0]: relay secret must start with whsec_"]


def test_load_config_store_url_of_unknown_scheme_is_one_problem_without_the_url(tmp_path: Path) -> None:
    text = config_text().replace('url = "sqlite:///var/sidecar.sqlite3"', 'url = "mysql://u:hunter2@db/sidecar"')
    found = problems(tmp_path, text=text)
    assert len(found) == 1 and found[0].startswith("store.url: must be")
    assert "hunter2" not in found[0]


def test_load_config_postgresql_url_from_env_selects_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WX_STORE_URL", "postgresql://wx:s3cr3tpw@db.internal:5432/wx?sslmode=verify-full")
    text = config_text().replace('url = "sqlite:///var/sidecar.sqlite3"', 'url = { env = "WX_STORE_URL" }')
    store = load_config(write_config(tmp_path, text)).store
    assert store.backend == "postgresql"
    assert store.url.reveal().endswith("?sslmode=verify-full")
    assert "s3cr3tpw" not in repr(store)


def test_load_config_store_pool_min_above_max_is_a_problem(tmp_path: Path) -> None:
    text = config_text().replace('url = "sqlite:///var/sidecar.sqlite3"', STORE_POOL_INVERTED)
    assert problems(tmp_path, text=text) == ["store.pool_min_size: must not exceed pool_max_size (2)"]


STORE_POOL_INVERTED = 'url = "postgresql://db/wx"\npool_min_size = 5\npool_max_size = 2'


def test_load_config_absolute_store_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "db.sqlite3"
    text = config_text().replace("sqlite:///var/sidecar.sqlite3", f"sqlite:///{target}")
    assert load_config(write_config(tmp_path, text)).store.path == target


def test_load_config_unknown_account_kind_is_one_problem(tmp_path: Path) -> None:
    text = config_text().replace('kind = "mp"', 'kind = "miniapp"')
    assert problems(tmp_path, text=text) == ["accounts[0].kind: must be one of mp, wecom (got 'miniapp')"]


def test_load_config_bk_login_identity_requires_login_url(tmp_path: Path) -> None:
    found = problems(tmp_path, extra='[binding]\nidentity = "bk_login"\n')
    assert found == ['binding.bk_login_url: is required when identity = "bk_login"']


def test_load_config_header_identity_requires_trusted_proxies(tmp_path: Path) -> None:
    found = problems(tmp_path, extra='[binding]\nidentity = "header"\n')
    assert len(found) == 1 and found[0].startswith("binding.trusted_proxies: is required")


def test_load_config_binding_section_is_read(tmp_path: Path) -> None:
    extra = (
        '[binding]\nidentity = "header"\nuser_header = "X-User"\ntrusted_proxies = ["10.0.0.0/8"]\n'
        'qr_ttl_s = 300\nwecom_login = "wwlogin"\nenabled = false\n[audit]\nstore_bodies = true\n'
    )
    config = load_config(write_config(tmp_path, extra=extra))
    assert config.binding.user_header == "X-User"
    assert [str(n) for n in config.binding.trusted_proxies] == ["10.0.0.0/8"]
    assert (config.binding.qr_ttl_s, config.binding.wecom_login, config.binding.enabled) == (300, "wwlogin", False)
    assert config.audit.store_bodies is True


def test_load_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    text = config_text().replace('mode = "push"', 'mode = "both"').replace("agent_id = 1000002", 'agent_id = "x"')
    found = problems(tmp_path, text=text)
    assert found == ["relay.mode: must be one of push, pull (got 'both')", "accounts[1].agent_id: must be an integer"]


def test_wecom_token_key_differs_per_secret_and_hides_it(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    account = config.account("corp")
    assert isinstance(account, WecomAccount)
    assert account.token_key.startswith("wecom:ww1234567890:")
    assert "corp-secret" not in account.token_key
