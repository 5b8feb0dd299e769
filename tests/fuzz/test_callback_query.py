"""The callback endpoint against forged and broken query strings: signatures, timestamps, parameters.

Signature checks come before the body is looked at, so a bad signature is refused (403) whatever
the body holds; a missing or ill-formed parameter is refused (400); nothing is ever spooled.
"""

from __future__ import annotations

from hypothesis import assume, event, given
from hypothesis import strategies as st

from tests.fuzz.callbacks import ACCOUNT_OF, BUILDER_OF, CORP, MP, PLACES, Callbacks, Place, place, url
from tests.fuzz.strategies import header_values, xml_text
from tests.fuzz.support import FUZZ, assert_refused
from tests.gateway.conftest import NOW
from tests.gateway.helpers import message_xml, sha1_sign, text_message

places = st.sampled_from(PLACES)
# What a query value can be on the wire (percent-encoding carries any character but surrogates).
query_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=60)
SIGNATURE_OF: dict[Place, str] = {"plain": "signature", "safe": "msg_signature", "compat": "msg_signature",
                                  "wecom": "msg_signature"}


def valid(where: Place) -> tuple[str, dict[str, str], bytes]:
    return place(where, message_xml(text_message("query fuzz")).encode("utf-8"))


@FUZZ
@given(where=places, forged=query_text | st.text("0123456789abcdefABCDEF", min_size=40, max_size=40))
async def test_callback_bad_signature_is_refused(gw: Callbacks, where: Place, forged: str) -> None:
    account, query, body = valid(where)
    name = SIGNATURE_OF[where]
    assume(forged.lower() != query[name])
    query[name] = forged
    await gw.refused(account, query, body, 400 if not forged else 403)


@FUZZ
@given(where=places, data=st.data())
async def test_callback_missing_parameters_are_refused_400(gw: Callbacks, where: Place, data: st.DataObject) -> None:
    account, query, body = valid(where)
    required = [SIGNATURE_OF[where], "timestamp", "nonce"]
    dropped = data.draw(st.lists(st.sampled_from(required), min_size=1, unique=True))
    blank = data.draw(st.booleans())  # present but empty counts as missing
    for name in dropped:
        if blank:
            query[name] = ""
        else:
            del query[name]
    reason = await gw.refused(account, query, body, 400)
    assert "missing query parameter" in reason


@FUZZ
@given(
    where=st.sampled_from(("safe", "compat", "wecom")),
    trick=st.sampled_from(("msg_signature_is_signature", "only_signature", "msg_signature_of_other_encrypt",
                           "msg_signature_without_encrypt")),
)
async def test_callback_signature_is_never_taken_for_msg_signature(gw: Callbacks, where: Place, trick: str) -> None:
    """In encrypted modes only msg_signature (which covers the ciphertext) authenticates."""
    account, query, body = valid(where)
    token = BUILDER_OF[where].token
    plain_signature = sha1_sign(token, query["timestamp"], query["nonce"])
    if trick == "msg_signature_is_signature":
        query["msg_signature"] = plain_signature
    elif trick == "only_signature":
        del query["msg_signature"]
        query["signature"] = plain_signature
    elif trick == "msg_signature_of_other_encrypt":
        other = valid(where)[1]  # another message's msg_signature, same timestamp and nonce
        query["msg_signature"], query["nonce"] = other["msg_signature"], other["nonce"]
    else:
        query["msg_signature"] = sha1_sign(token, query["timestamp"], query["nonce"], "")
    await gw.refused(account, query, body, 400, 403)


@FUZZ
@given(where=st.sampled_from(("safe", "compat")), forged=query_text)
async def test_callback_encrypted_mp_is_authenticated_by_msg_signature_alone(
    gw: Callbacks, where: Place, forged: str
) -> None:
    """The control of the test above: with a valid msg_signature, a junk ``signature`` is irrelevant."""
    account, query, body = valid(where)
    query["signature"] = forged
    await gw.accepted(account, query, body)


@FUZZ
@given(
    where=places,
    skew=st.integers(301, 10**6) | st.integers(10**6, NOW),
    future=st.booleans(),
)
async def test_callback_stale_timestamp_is_refused_403(gw: Callbacks, where: Place, skew: int, future: bool) -> None:
    stamp = str(NOW + skew if future else NOW - skew)
    builder = BUILDER_OF[where]
    fields = text_message("late")
    if where == "plain":
        query, body = builder.mp_plain(fields, timestamp=stamp)
    elif where == "wecom":
        query, body = builder.wecom_post(fields, timestamp=stamp)
    else:
        query, body = (builder.mp_safe if where == "safe" else builder.mp_compat)(fields, timestamp=stamp)
    reason = await gw.refused(ACCOUNT_OF[where], query, body, 403)
    assert "outside the 300 s window" in reason


@FUZZ
@given(where=places, stamp=query_text | st.text("0123456789", min_size=13, max_size=30) | header_values)
async def test_callback_timestamp_that_is_not_unix_seconds_is_refused_400(
    gw: Callbacks, where: Place, stamp: str
) -> None:
    assume(not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12))
    account, query, body = valid(where)
    name = SIGNATURE_OF[where]
    token = BUILDER_OF[where].token
    extra = () if where == "plain" else (query_value_of_encrypt(body),)
    query["timestamp"] = stamp
    query[name] = sha1_sign(token, stamp, query["nonce"], *extra)  # correctly signed: only the format is wrong
    await gw.refused(account, query, body, 400)


def query_value_of_encrypt(body: bytes) -> str:
    text = body.decode("utf-8")
    return text.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]


@FUZZ
@given(
    where=places,
    extra=st.dictionaries(query_text, query_text, max_size=6),
    replace=st.booleans(),
    method=st.sampled_from(("GET", "POST")),
)
async def test_callback_random_query_strings_never_fail_the_server(
    gw: Callbacks, where: Place, extra: dict[str, str], replace: bool, method: str
) -> None:
    """Random parameters added to (or replacing) a valid query: answered 200 or a clear 4xx."""
    account, query, body = valid(where)
    query = {**query, **extra} if replace else {**extra, **query}
    depth = gw.spool.stats().depth
    async with gw.client.request(method, url(account), params=query, data=body) as response:
        status, text = response.status, await response.text()
    event(f"{method} {status}")
    if status == 200:
        assert gw.spool.stats().depth <= depth + 1
    else:
        assert_refused(status, text, 400, 403)
        assert gw.spool.stats().depth == depth


@FUZZ
@given(name=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/{}?#%"), min_size=1,
                    max_size=80))
async def test_callback_unknown_account_is_refused_404(gw: Callbacks, name: str) -> None:
    assume(name not in ("main", "plain", "strict", "corp", "mpvec", "corpvec", ".", ".."))
    _, query, body = valid("plain")
    async with gw.client.post("/wechat/" + name + "/callback", params=query, data=body) as response:
        status, text = response.status, await response.text()
    assert_refused(status, text, 404)


@FUZZ
@given(echostr=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=300) | xml_text.filter(bool))
async def test_callback_mp_verification_echoes_any_echostr_exactly(gw: Callbacks, echostr: str) -> None:
    """Odd Unicode in a signed MP verification comes back byte for byte, as text/plain."""
    query = MP.mp_verify(echostr)
    async with gw.client.get(url("main"), params=query) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert await response.text() == echostr


@FUZZ
@given(echostr=query_text.filter(bool))
async def test_callback_wecom_verification_with_a_bad_echostr_is_refused(gw: Callbacks, echostr: str) -> None:
    query = CORP.wecom_verify(echostr=echostr)
    async with gw.client.get(url("corp"), params=query) as response:
        assert_refused(response.status, await response.text(), 400, 403)


@FUZZ
@given(request_id=header_values, content_type=header_values)
async def test_callback_odd_headers_never_fail_the_server(gw: Callbacks, request_id: str, content_type: str) -> None:
    """Any X-Request-Id and Content-Type: a valid callback is still accepted; ids are never echoed raw."""
    account, query, body = valid("plain")
    headers = {"X-Request-Id": request_id, "Content-Type": content_type}
    async with gw.client.post(url(account), params=query, data=body, headers=headers) as response:
        assert (response.status, await response.text()) == (200, "success")
        rid = response.headers["X-Request-Id"]
        assert rid == request_id or (len(rid) == 32 and rid.isalnum())
