"""The shape of WeChat ids (sidecar.wechat.ids): real ids and the emulator's pass, fan-outs do not."""

from __future__ import annotations

import pytest

from devtools.emulator.state import generated_openid
from sidecar.errors import InvalidWxId
from sidecar.wechat import ids

REAL_OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


@pytest.mark.parametrize("openid", [REAL_OPENID, generated_openid("wx1234", "alice"), "oAlice0001", "o_bob-1"])
def test_problem_openid_of_wechat_or_the_emulator_is_none(openid: str) -> None:
    assert ids.problem("mp", openid) is None


@pytest.mark.parametrize("userid", ["zhangsan", "ZhangSan", "li.si@example.com", "0042", "a-b_c", "u" * 64])
def test_problem_wecom_userid_of_wecoms_rule_is_none(userid: str) -> None:
    assert ids.problem("wecom", userid) is None


@pytest.mark.parametrize("kind", ["mp", "wecom"])
@pytest.mark.parametrize(
    ("wx_id", "reason"),
    [
        ("@all", "is not accepted (the whole company): name the recipients"),
        ("@ALL", "is not accepted (the whole company): name the recipients"),
        ("carol|bob", "holds a separator (| , ; or a space)"),
        ("mallory,@all", "holds a separator (| , ; or a space)"),
        ("a;b", "holds a separator (| , ; or a space)"),
        ("a b", "holds a separator (| , ; or a space)"),
        ("bob\x1b[31m", "holds a control character"),
        ("bob\tcarol", "holds a control character"),
        ("bob\ncarol", "holds a control character"),
        ("bob\x00", "holds a control character"),
        ("bob\u202e", "holds a control character"),
        ("", "is empty"),
        ("o" * 65, "is longer than 64 characters"),
    ],
)
def test_problem_fan_out_or_control_character_names_the_reason(kind: str, wx_id: str, reason: str) -> None:
    assert ids.problem(kind, wx_id) == reason  # type: ignore[arg-type]


@pytest.mark.parametrize("wx_id", ['=HYPERLINK("http://x")', "-2+3", "_abc", "张三"])
def test_problem_openid_outside_the_character_set_is_refused(wx_id: str) -> None:
    assert ids.problem("mp", wx_id) == "is not an MP openid (letters, digits, _ and -)"


@pytest.mark.parametrize("wx_id", ["@bob", ".bob", "-bob", "bob/../x", "bob+1", "张三"])
def test_problem_userid_breaking_wecoms_rule_is_refused(wx_id: str) -> None:
    reason = ids.problem("wecom", wx_id)
    assert reason is not None and reason.startswith("is not a WeCom userid")


def test_check_raises_invalid_wx_id_with_the_id_escaped_and_cut() -> None:
    with pytest.raises(InvalidWxId) as caught:
        ids.check("wecom", "\x1b]0;pwned\x07" + "x" * 100)
    assert caught.value.status == 400
    assert caught.value.detail.startswith("'\\u001b]0;pwned\\u0007xxx")
    assert "…' holds a control character" in caught.value.detail
    assert "\x1b" not in caught.value.detail


def test_escaped_leaves_printable_text_alone() -> None:
    assert ids.escaped("张三 alice@x") == "张三 alice@x"


def test_escaped_turns_controls_into_visible_escapes() -> None:
    assert ids.escaped("a\tb\nc\x1b[2J\x9b\u202e") == "a\\tb\\nc\\u001b[2J\\u009b\\u202e"
