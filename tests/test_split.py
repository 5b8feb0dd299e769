"""The split between the tiers, proven from the source: these fail if it erodes.

A security reviewer can confirm from the gateway's code alone that it holds no AppSecret and
calls no WeChat API; these tests make that claim mechanical (docs/SECURITY.md cites them).

contract/ is the wire alone: no HTTP library, so it can be read (and reused) without a server.
common/ may import aiohttp since both tiers are aiohttp apps and share one request-id middleware
(``common.http``) rather than two copies; it still imports neither tier, devtools nor contract,
so it stays policy-free.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WECHAT_API_HOSTS = re.compile(r"(api\.weixin\.qq\.com|qyapi\.weixin\.qq\.com|api\.wechat\.com|/cgi-bin/)")
SECRET_LIKE_KEY = re.compile(r"(app_?secret|corp_?secret|wx_secret|access_token)", re.IGNORECASE)


def _sources(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _string_constants(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("gateway", {"sidecar", "devtools"}),
        ("sidecar", {"gateway", "devtools"}),
        ("contract", {"gateway", "sidecar", "devtools", "aiohttp", "common"}),
        ("common", {"gateway", "sidecar", "devtools", "contract"}),
    ],
)
def test_package_imports_stay_within_its_tier(package: str, forbidden: set[str]) -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {sorted(_imported_roots(path) & forbidden)}"
        for path in _sources(package)
        if _imported_roots(path) & forbidden
    }
    assert not offenders, offenders


def test_gateway_names_no_wechat_api_endpoint() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {value!r}"
        for path in _sources("gateway")
        for value in _string_constants(path)
        if WECHAT_API_HOSTS.search(value)
    ]
    assert not offenders, offenders


def _names_and_literals(path: Path) -> Iterator[str]:
    """Identifiers, attribute names, arguments and non-docstring string literals of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.arg):
            yield node.arg
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value


def test_gateway_code_has_no_app_secret_like_names() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {value!r}"
        for path in _sources("gateway")
        for value in _names_and_literals(path)
        if SECRET_LIKE_KEY.search(value)
    ]
    assert not offenders, offenders


def test_gateway_config_rejects_an_app_secret_key(tmp_path: Path) -> None:
    from common.config import ConfigError
    from gateway.config import load_config

    config = tmp_path / "gateway.toml"
    config.write_text(
        """
[server]
listen = "127.0.0.1:8080"
[spool]
path = "spool.sqlite3"
[relay]
mode = "push"
push_url = "http://127.0.0.1:8081/relay/v1/events"
secrets = ["whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]
[[accounts]]
name = "main"
kind = "mp"
app_id = "wx0000000000000000"
token = "tok123"
app_secret = "should-never-be-here"
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.problems == ["accounts[0].app_secret: unknown key"]


def test_gateway_opens_client_sessions_only_in_the_relay() -> None:
    """Outbound HTTP from the gateway exists in exactly one room: gateway/relay/ (the push relay)."""
    users = sorted(
        str(path.relative_to(ROOT))
        for path in _sources("gateway")
        if "ClientSession" in path.read_text(encoding="utf-8")
    )
    assert users and all(Path(u).parent == Path("gateway/relay") for u in users), users
