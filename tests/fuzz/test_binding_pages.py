"""The binding pages (``/bind/`` and one-time links ``/bind/<token>``) against any path, query and cookie.

Whatever arrives, the answer is an HTML page or notice, never a 5xx; a request that opens no
link changes nothing in the store, sets no cookie, logs no token, and leaves a real link it
mangles (``/bind/<token>/x``, HEAD) valid for the user's own click.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from yarl import URL

from tests.fuzz.binding import BINDING_FUZZ, assert_page, effects, hostile_text
from tests.fuzz.strategies import header_values
from tests.security.logcheck import rendered
from tests.sidecar.binding.conftest import Rig, make_rig, rig

__all__ = ["make_rig", "rig"]  # the binding suite's rig, as fixtures of this module

mangles = st.sampled_from(("{t}/", "{t}/x", "{t}//", "/{t}", "{t}%00", "{t}x", "{t}%3Flang=en", "{short}"))


@BINDING_FUZZ
@given(tail=hostile_text, mangle=mangles | st.just(""), method=st.sampled_from(("GET", "HEAD")))
async def test_binding_link_path_that_is_not_the_token_opens_nothing_and_logs_no_token(
    rig: Rig, caplog: pytest.LogCaptureFixture, tail: str, mangle: str, method: str
) -> None:
    url = (await rig.link("alice"))["data"]["url"]
    token = URL(url).path.rsplit("/", 1)[1]
    suffix = mangle.format(t=token, short=token[:-1]) if mangle else quote(tail, safe="")
    assume(suffix not in ("", token))  # "" is the page itself
    rig.client.session.cookie_jar.clear()
    before = effects(rig)
    with caplog.at_level(logging.DEBUG):
        response = await rig.client.request(method, "/bind/" + suffix, allow_redirects=False)
        body = await response.text()
    assert response.status < 500 and "Traceback" not in body
    assert "Set-Cookie" not in response.headers
    assert effects(rig) == before, f"{method} /bind/{suffix[:80]!r} changed the store"
    assert token not in rendered(caplog.records)
    caplog.clear()
    assert (await rig.open(url)).status == 303  # still valid for the user's own click


@BINDING_FUZZ
@given(
    query=st.dictionaries(st.sampled_from(("lang", "account", "session", "x")), hostile_text, max_size=3),
    language=header_values,
    cookie=header_values,
)
async def test_binding_page_any_query_language_and_forged_cookie_is_a_sign_in_page(
    rig: Rig, query: dict[str, str], language: str, cookie: str
) -> None:
    before = effects(rig)
    headers = {"Accept-Language": language, "Cookie": f"wxsc_bind={cookie}"}
    response = await rig.client.get("/bind/", params=query, headers=headers, allow_redirects=False)
    body = await response.text()
    assert_page(response, body)
    assert response.status == 401, body[:300]
    assert effects(rig) == before
