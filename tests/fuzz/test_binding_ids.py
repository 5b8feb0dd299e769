"""Every way a WeChat id gets into the binding table, against any id: only well-shaped ids get in.

A scan event's ``FromUserName``, a WeCom login's ``userid`` and a row of ``bindings import`` may
carry anything (``@all``, ``a|b``, ANSI escapes, NUL, formulas, any Unicode). Whatever they carry,
no 5xx and no crash; the id is bound exactly as given when it has its kind's shape
(sidecar.wechat.ids) and not at all otherwise; the admin CLI exits 0 or 2 and prints nothing a
terminal would act on.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sidecar.__main__ import main
from sidecar.binding import texts
from sidecar.store import Binding
from sidecar.wechat import ids
from tests.fuzz.binding import BINDING_FUZZ, HOSTILE, effects, hostile_text, stored_ids_follow_the_rules, wx_ids
from tests.sidecar.binding.conftest import CONSOLE, Rig, make_rig, rig
from tests.sidecar.helpers import write_config

__all__ = ["make_rig", "rig"]  # the binding suite's rig, as fixtures of this module

KINDS = {"main": "mp", "corp": "wecom"}
openids = wx_ids.filter(lambda t: t.strip() == t and t != "")  # the relay's XML carries text stripped


@BINDING_FUZZ
@given(openid=openids)
@example(openid="oyORnuP8q7ou2gfYjqLzSIWZf0rs").via("a real openid")
@example(openid="mallory,@all").via("the review")
async def test_scan_from_any_openid_binds_it_only_when_it_is_an_openid(rig: Rig, openid: str) -> None:
    await rig.sign_in("alice")
    await rig.store.bindings.unbind("main", "alice")
    scene = await rig.qrcode()
    reply = await rig.scan(scene, openid=openid)
    binding = await rig.store.bindings.get("main", "alice")
    if ids.problem("mp", openid) is None:
        assert binding is not None and binding.wx_id == openid, reply
    else:
        assert binding is None and reply == texts.WX_ID_INVALID, (openid, reply)


@BINDING_FUZZ
@given(userid=wx_ids)
@example(userid="zhangsan").via("a real userid")
@example(userid="carol|bob").via("the review")
async def test_wecom_login_with_any_userid_binds_it_only_when_it_is_a_userid(rig: Rig, userid: str) -> None:
    await rig.sign_in("bob", account="corp")
    await rig.store.bindings.unbind("corp", "bob")
    rig.wechat.queue("wecom_getuserinfo", {"errcode": 0, "errmsg": "ok", "userid": userid})
    _, body = await rig.console("qy/get_login_url/")
    state = parse_qs(urlsplit(body["url"]).query)["state"][0]
    before = effects(rig)[0]
    response = await rig.client.get(CONSOLE + "qy/login_callback/", params={"code": "CODE", "state": state})
    assert response.status == 200 and "Traceback" not in await response.text()
    binding = await rig.store.bindings.get("corp", "bob")
    if userid and ids.problem("wecom", userid) is None:
        assert binding is not None and binding.wx_id == userid
    else:
        assert binding is None and effects(rig)[0] == before


def printable_lines(text: str, separators: str = "\n") -> bool:
    """Nothing a terminal acts on: every character printable but the ``separators`` we print."""
    return all(c in separators or c.isprintable() for c in text)


rows = st.lists(st.tuples(hostile_text | st.sampled_from(("alice", "bob", "carol")), wx_ids), max_size=6)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@BINDING_FUZZ
@given(
    table=rows,
    account=st.sampled_from(("main", "corp")),
    raw=st.sampled_from(("", "", "\x00", '"unterminated', "x" * 140_000, "a,b\r\nc", "\ufeff")),
)
def test_cli_import_any_csv_exits_0_or_2_imports_only_well_shaped_ids_and_prints_no_controls(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], table: list[tuple[str, str]],
    account: str, raw: str
) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    csv_file = tmp_path / "export.csv"
    csv_file.write_text(buffer.getvalue() + raw, encoding="utf-8", errors="surrogatepass")
    code = main(["--config", str(config_path), "bindings", "import", str(csv_file), "--account", account])
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err)
    assert printable_lines(out) and printable_lines(err), (out[:300], err[:300])
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("cannot read"), err
    main(["--config", str(config_path), "bindings", "list", "--account", account])
    listed, _ = capsys.readouterr()
    assert printable_lines(listed, "\n\t") and all(len(line.split("\t")) == 5 for line in listed.splitlines())
    main(["--config", str(config_path), "bindings", "list", "--account", account, "--json"])
    rows = [Binding(**{**json.loads(line), "updated_at": 0.0}) for line in capsys.readouterr()[0].splitlines()]
    assert stored_ids_follow_the_rules(rows, KINDS), [b.wx_id for b in rows]


def test_hostile_ids_of_the_review_are_all_refused() -> None:
    """The control of the properties above: what the review fed in never has an id's shape."""
    refused = [h for h in HOSTILE if h not in ("null", "undefined", "x" * 65) and h.strip()]
    assert all(ids.problem("mp", h) and ids.problem("wecom", h) for h in refused)
