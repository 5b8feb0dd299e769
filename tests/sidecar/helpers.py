"""Builders shared by the sidecar suites: one valid config, so each test breaks one thing."""

from __future__ import annotations

from pathlib import Path

RELAY_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, test only
MP_SECRET = "mp-app-secret-for-tests"
CORP_SECRET = "corp-secret-for-tests"
CLIENT_SECRET = "bk-paas-secret-for-tests"

SERVER = """
[server]
listen = "127.0.0.1:8081"
public_url = "http://paas.example.com"
"""
STORE = """
[store]
url = "sqlite:///var/sidecar.sqlite3"
"""
RELAY = f"""
[relay]
mode = "push"
secrets = ["{RELAY_SECRET}"]
"""
WECHAT = """
[wechat]
mp_api = "http://127.0.0.1:9/mp"
wecom_api = "http://127.0.0.1:9/wecom"
timeout_s = 2
"""
MP_ACCOUNT = f"""
[[accounts]]
name = "main"
kind = "mp"
app_id = "wx1234567890abcdef"
app_secret = "{MP_SECRET}"
template_id = "tmpl-1"
default = true
"""
WECOM_ACCOUNT = f"""
[[accounts]]
name = "corp"
kind = "wecom"
corp_id = "ww1234567890"
corp_secret = "{CORP_SECRET}"
agent_id = 1000002
"""
CLIENT = f"""
[[clients]]
app_code = "bk_paas"
app_secret = "{CLIENT_SECRET}"
may_get_token = true
may_refresh_token = true
"""

SECTIONS = {
    "server": SERVER,
    "store": STORE,
    "relay": RELAY,
    "wechat": WECHAT,
    "mp": MP_ACCOUNT,
    "wecom": WECOM_ACCOUNT,
    "client": CLIENT,
}


def config_text(*, drop: tuple[str, ...] = (), replace: dict[str, str] | None = None, extra: str = "") -> str:
    """The full valid config, with named sections dropped or replaced, plus ``extra`` TOML."""
    replace = replace or {}
    parts = [replace.get(name, text) for name, text in SECTIONS.items() if name not in drop]
    return "\n".join(parts) + "\n" + extra


def write_config(
    directory: Path,
    text: str | None = None,
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, str] | None = None,
    extra: str = "",
) -> Path:
    path = directory / "sidecar.toml"
    body = text if text is not None else config_text(drop=drop, replace=replace, extra=extra)
    path.write_text(body, encoding="utf-8")
    return path
