"""The BlueKing send API (/api/c/compapi/[v2/]cmsi/<component>/) against any parameters.

Whatever arrives (GET query, JSON, form, bodies that start with ``{`` but are not JSON, JSON that
is not an object, nested values where text is expected, huge receiver lists, bad base64 with
``is_message_base64``, odd Unicode), the answer is HTTP 200 with BlueKing's envelope, and nothing
is logged as a crash. WeChat is mocked (aioresponses); a valid request really sends.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from tests.fuzz.bk import AUTH, COMPONENTS, FAILED, OK, BlueKing, assert_envelope
from tests.fuzz.strategies import SPECIAL_TEXT, deep_json, header_values, json_values, surrogates, xml_text
from tests.fuzz.support import FUZZ

PARAMS = ("receiver", "receiver__username", "data", "url", "msg_type", "title", "content", "date", "remark",
          "is_content_base64", "wx_msg_type", "msgtype", "btntxt", "account", "idempotency_key", "wx_qy_agentid",
          "wx_qy_corpsecret", "bk_app_code", "bk_app_secret", "bk_signature", "bk_timestamp", "bk_nonce",
          "bk_username")
DATA_FIELDS = ("heading", "message", "date", "remark", "is_message_base64")

components = st.sampled_from(COMPONENTS)
odd_text = xml_text | st.text(max_size=50) | st.tuples(xml_text, surrogates, xml_text).map("".join)
values = json_values | odd_text | st.lists(odd_text, max_size=5)
data_objects = st.dictionaries(st.sampled_from(DATA_FIELDS), values | st.booleans())
params = st.dictionaries(st.sampled_from(PARAMS), values | data_objects | data_objects.map(json.dumps), max_size=8)


@FUZZ
@given(component=components, body=params, auth=st.booleans(), v2=st.booleans())
async def test_bk_any_json_parameters_answer_the_envelope(
    bk: BlueKing, component: str, body: dict[str, Any], auth: bool, v2: bool
) -> None:
    envelope = await bk.json(component, body, auth=auth, v2=v2)
    event(f"code {envelope['code']}")


@FUZZ
@given(component=components, query=st.dictionaries(st.sampled_from(PARAMS) | st.text(max_size=10),
                                                   st.text(st.characters(blacklist_categories=["Cs"]), max_size=80)),
       method=st.sampled_from(("GET", "POST")))
@example(component="send_qy_weixin", query={"receiver": "0", "content": "0", "wx_msg_type": "0\n0"}, method="GET")
async def test_bk_any_query_string_answers_the_envelope(
    bk: BlueKing, component: str, query: dict[str, str], method: str
) -> None:
    await bk.call(component, method=method, query={**AUTH, **query})


@FUZZ
@given(component=components, form=st.dictionaries(st.sampled_from(PARAMS) | st.text(max_size=10), odd_text))
async def test_bk_any_form_body_answers_the_envelope(bk: BlueKing, component: str, form: dict[str, str]) -> None:
    body = urlencode({**AUTH, **form}, errors="surrogatepass").encode("ascii")
    await bk.call(component, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})


@FUZZ
@given(component=components, rest=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
       depth=st.sampled_from((0, 0, 5000, 100_000)))
async def test_bk_body_starting_with_a_brace_that_is_not_json_is_refused_in_the_envelope(
    bk: BlueKing, component: str, rest: bytes, depth: int
) -> None:
    body = b"{" + rest if not depth else b'{"data":' + deep_json(depth) + b"}"
    try:
        valid = isinstance(json.loads(body.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError, RecursionError):
        valid = False
    assume(not valid)
    envelope = await bk.call(component, query=AUTH, body=body, headers={"Content-Type": "application/json"})
    assert (envelope["result"], envelope["code"]) == (False, FAILED)


@FUZZ
@given(component=components, value=json_values.filter(lambda v: not isinstance(v, dict)))
async def test_bk_json_that_is_not_an_object_answers_the_envelope(bk: BlueKing, component: str, value: Any) -> None:
    envelope = await bk.json(component, value, auth=False)
    assert envelope["result"] is False


@FUZZ
@given(
    field=st.sampled_from(DATA_FIELDS[:2]),
    value=json_values.filter(lambda v: not isinstance(v, str | int | float) or isinstance(v, bool)),
)
async def test_bk_nested_value_where_text_is_expected_is_refused(bk: BlueKing, field: str, value: Any) -> None:
    assume(value is not None)
    data = {"heading": "h", "message": "m", field: value}
    before = bk.wechat.count("template_send")
    envelope = await bk.json("send_weixin", {"receiver": ["oUser1"], "data": data})
    assert envelope["result"] is False
    assert f"[{field}]" in envelope["message"]
    assert bk.wechat.count("template_send") == before


@FUZZ
@given(encoded=st.text(max_size=120))
async def test_bk_bad_base64_message_is_refused(bk: BlueKing, encoded: str) -> None:
    compact = "".join(encoded.split()).replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True).decode("utf-8")
    except ValueError:
        decoded = ""
    assume(not decoded.strip())
    data = {"heading": "h", "message": encoded, "is_message_base64": True}
    before = bk.wechat.count("template_send")
    envelope = await bk.json("send_weixin", {"receiver": "oUser1", "data": data})
    assert envelope["result"] is False
    assert bk.wechat.count("template_send") == before


# One line of at most 20 characters: the default template keys (thing1, thing2) are WeChat "thing"
# fields, which show one line of 20 (sidecar.esb.template folds line breaks and cuts longer text).
one_line = st.text(st.sampled_from(SPECIAL_TEXT.replace("\u2028", "").replace("\u2029", "")) | st.characters(
    blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1, max_size=20).filter(str.strip)


@FUZZ
@given(heading=one_line, message=one_line, as_base64=st.booleans())
async def test_bk_odd_unicode_message_reaches_wechat_exactly(
    bk: BlueKing, heading: str, message: str, as_base64: bool
) -> None:
    """The control of the refusals: any one-line Unicode text is sent as given (stripped)."""
    sent = base64.b64encode(message.encode("utf-8")).decode() if as_base64 else message
    before = bk.wechat.count("template_send")
    data = {"heading": heading, "message": sent, "is_message_base64": as_base64}
    envelope = await bk.json("send_weixin", {"receiver": "oUser1", "data": data})
    assert (envelope["result"], envelope["code"]) == (True, OK), envelope
    body = bk.wechat.of("template_send")[before].body or {}
    texts = json.dumps(body["data"], ensure_ascii=False)
    assert json.dumps(heading.strip(), ensure_ascii=False)[1:-1] in texts
    assert json.dumps(message.strip(), ensure_ascii=False)[1:-1] in texts


@FUZZ
@given(count=st.integers(1000, 60_000), shape=st.sampled_from(("list", "comma", "json_string")))
async def test_bk_huge_receiver_list_answers_the_envelope(bk: BlueKing, count: int, shape: str) -> None:
    """Parsing a huge list costs little: with a missing heading nothing is sent, and it says why.
    Past the 1 MiB body limit the refusal is an envelope too."""
    ids = [f"o{n:027d}" for n in range(count)]
    receiver: Any = ids if shape == "list" else ",".join(ids) if shape == "comma" else json.dumps(ids)
    envelope = await bk.json("send_weixin", {"receiver": receiver, "data": {"message": "m"}})
    assert envelope["result"] is False
    assert "[heading]" in envelope["message"] or "larger than 1048576 bytes" in envelope["message"]


async def test_bk_large_receiver_list_is_sent_to_everyone(bk: BlueKing) -> None:
    ids = [f"oUser{n:06d}" for n in range(2000)]
    envelope = await bk.json("send_weixin", {"receiver": ids, "data": {"heading": "h", "message": "m"}})
    assert (envelope["result"], envelope["code"]) == (True, OK)
    assert bk.wechat.count("template_send") == len(ids)


@FUZZ
@given(authorization=header_values)
async def test_bk_odd_authorization_header_answers_the_envelope(bk: BlueKing, authorization: str) -> None:
    envelope = await bk.call("send_weixin", method="GET", headers={"X-Bkapi-Authorization": authorization})
    assert envelope["result"] is False


@FUZZ
@given(stamp=st.text(st.sampled_from("0123456789²³¹"), min_size=1, max_size=12) | header_values,
       signature=header_values, nonce=header_values)
async def test_bk_odd_signature_parameters_answer_the_envelope(
    bk: BlueKing, stamp: str, signature: str, nonce: str
) -> None:
    query = {"bk_app_code": "bk_paas", "bk_signature": signature or "x", "bk_timestamp": stamp, "bk_nonce": nonce}
    envelope = await bk.call("send_weixin", method="GET", query=query)
    assert envelope["result"] is False


@FUZZ
@given(depth=st.integers(1000, 4000))  # as deep as fits in aiohttp's 8190-byte header limit
async def test_bk_deeply_nested_authorization_header_answers_the_envelope(bk: BlueKing, depth: int) -> None:
    header = deep_json(depth).decode()
    envelope = await bk.call("send_weixin", method="GET", headers={"X-Bkapi-Authorization": header})
    assert envelope["result"] is False


@FUZZ
@given(encoding=st.sampled_from(("gzip", "deflate")), junk=st.binary(min_size=1, max_size=200))
async def test_bk_body_that_does_not_decode_as_its_content_encoding_answers_the_envelope(
    bk: BlueKing, encoding: str, junk: bytes
) -> None:
    envelope = await bk.call("send_weixin", query=AUTH, body=junk, headers={"Content-Encoding": encoding},
                             protocol_refusal=True)
    assert not envelope or envelope["result"] is False


@FUZZ
@given(field=st.sampled_from(("data", "receiver", "receiver__username")), depth=st.integers(1000, 100_000),
       as_query=st.booleans())
async def test_bk_deeply_nested_json_inside_a_text_parameter_is_refused(
    bk: BlueKing, field: str, depth: int, as_query: bool
) -> None:
    """``data`` and the receiver lists may be JSON held in a string (GET and form requests). A
    receiver string that is not JSON is split like any other, so only ``data`` is refused."""
    nested = deep_json(depth).decode()
    other = {"data": json.dumps({"heading": "h", "message": "m"})} if field != "data" else {"receiver": "oUser1"}
    params = {**AUTH, **other, field: nested}
    before = bk.wechat.count("template_send")
    if as_query and depth < 1300:  # aiohttp reads at most 8190 bytes of request line
        envelope = await bk.call("send_weixin", method="GET", query=params)
    else:
        envelope = await bk.json("send_weixin", params)
    if field == "data":
        assert envelope["result"] is False and "[data]" in envelope["message"]
        assert bk.wechat.count("template_send") == before


@FUZZ
@given(body=params, method=st.sampled_from(("GET", "POST")))
async def test_bk_get_token_with_any_parameters_answers_the_envelope(
    bk: BlueKing, body: dict[str, Any], method: str
) -> None:
    payload = json.dumps(body, ensure_ascii=True).encode("ascii") if method == "POST" else None
    async with bk.client.request(method, "/api/c/compapi/weixin/get_token/", data=payload,
                                 params=None if method == "POST" else {k: str(v)[:200] for k, v in body.items()}
                                 ) as response:
        assert_envelope(response.status, await response.text())
