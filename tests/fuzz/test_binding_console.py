"""BlueKing's console endpoints and the binding-links API against any parameters and headers.

Every answer is BlueKing's JSON (``{"result": false, "message": <one line>}`` when refused) or, for
the WeCom login callback, an HTML page; never a 5xx. A refusal stores nothing; the unbind POST
removes a binding only when its ``Origin`` (or, with no Origin at all, its ``Referer``) is ours.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from sidecar.binding.identity import valid_username
from tests.fuzz.binding import BINDING_FUZZ, assert_console_answer, assert_page, effects, header_text, hostile_text
from tests.fuzz.bk import assert_envelope
from tests.fuzz.strategies import json_values
from tests.sidecar.binding.conftest import AUTH, CONSOLE, Rig, make_rig, rig

__all__ = ["make_rig", "rig"]  # the binding suite's rig, as fixtures of this module

PUBLIC = "http://paas.example.com"
GETS = ("mp/get_qrcode/", "qy/get_login_url/", "get_bind_status/")
KEYS = ("account", "session", "lang", "code", "state", "x")
params = st.dictionaries(st.sampled_from(KEYS), hostile_text, max_size=4)


@BINDING_FUZZ
@given(endpoint=st.sampled_from(GETS), query=params, signed_in=st.booleans())
async def test_console_get_endpoint_any_query_answers_bluekings_json(
    rig: Rig, endpoint: str, query: dict[str, str], signed_in: bool
) -> None:
    rig.client.session.cookie_jar.clear()
    if signed_in:
        await rig.sign_in("alice")
    before = effects(rig)
    status, body = await rig.console(endpoint, **query)
    assert_console_answer(status, body, state=endpoint == "get_bind_status/" and status == 200)
    if body["result"] is False:
        assert effects(rig) == before, f"a refused {endpoint} stored something: {body}"


def origin_choices(rig: Rig) -> st.SearchStrategy[str | None]:
    return st.sampled_from((None, "null", rig.origin, PUBLIC, "http://evil.example.net", "")) | header_text


@BINDING_FUZZ
@given(data=st.data())
async def test_unbind_any_origin_and_referer_unbinds_only_from_our_origin(rig: Rig, data: st.DataObject) -> None:
    ours = (rig.origin, PUBLIC)
    origin = data.draw(origin_choices(rig), label="Origin")
    referer = data.draw(st.sampled_from((None, rig.origin + "/bind/", PUBLIC + "/x", "http://evil.example.net/bind/"))
                        | header_text, label="Referer")
    assume(origin is None or origin in (*ours, "null", "http://evil.example.net", "") or rig.origin not in origin)
    await rig.sign_in("alice")
    if await rig.store.bindings.get("main", "alice") is None:
        await rig.store.bindings.bind("main", "alice", "oAlice0001", now=rig.clock())
    headers = {k: v for k, v in (("Origin", origin), ("Referer", referer)) if v is not None}
    response = await rig.client.post(CONSOLE + "unbind_wx_user_info/", headers=headers)
    body: dict[str, Any] = await response.json()
    assert_console_answer(response.status, body)
    same_site_referer = referer in (rig.origin + "/bind/", PUBLIC + "/x")
    expected = origin in ours or (origin is None and same_site_referer)
    assert (await rig.store.bindings.get("main", "alice") is None) == expected, (response.status, body)


@BINDING_FUZZ
@given(query=st.dictionaries(st.sampled_from(("state", "code", "auth_code", "lang")), hostile_text, max_size=4))
async def test_login_callback_any_state_and_code_binds_nothing(rig: Rig, query: dict[str, str]) -> None:
    await rig.sign_in("bob", account="corp")
    before = effects(rig)
    response = await rig.client.get(CONSOLE + "qy/login_callback/", params=query)
    assert_page(response, await response.text())
    assert effects(rig) == before
    assert rig.wechat.count("wecom_getuserinfo") == 0


@BINDING_FUZZ
@given(
    fields=st.dictionaries(st.sampled_from(("username", "account", "lang")), hostile_text | json_values, max_size=3),
    auth=st.booleans(),
)
async def test_binding_links_any_parameters_answer_the_envelope(
    rig: Rig, fields: dict[str, Any], auth: bool
) -> None:
    before = effects(rig)
    response = await rig.client.post("/api/v1/binding-links", json={**(AUTH if auth else {}), **fields})
    envelope = assert_envelope(response.status, await response.text())
    if envelope["result"] is False:
        assert effects(rig) == before
    else:
        assert auth and valid_username(fields.get("username"))
