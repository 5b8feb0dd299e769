"""Finding F5: a captured ``bk_signature`` request cannot be altered by repeating a parameter.

The reviewer took a genuine signed GET and prefixed parameters it already carried
(``receiver__username=…&data=…`` on a send, ``account=corp`` on ``get_token?account=main``).
The signature was checked over one value of the repeated key and the handler read the other, so
the altered request passed with forged text or another account's token. A signed request now
reads one way only: a repeated key, or a query ``data`` beside a body, is refused as a bad
signature before anything is done.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from sidecar.bk.callers import signature
from tests.sidecar.esb.conftest import T0, Rig
from tests.sidecar.helpers import CLIENT_SECRET

SEND = "/api/c/compapi/cmsi/send_weixin/"
GET_TOKEN = "/api/c/compapi/weixin/get_token/"
BAD_SIGNATURE = 1306404


def signed(path: str, params: dict[str, str], *, method: str = "GET", body: bytes = b"") -> str:
    """The query string of a genuine signed request, as BlueKing's SDK builds it."""
    query = {
        "bk_app_code": "bk_paas",
        "bk_nonce": "n-" + path.strip("/").replace("/", "-"),
        "bk_timestamp": str(int(T0)),
        **params,
    }
    return urlencode({**query, "bk_signature": signature(CLIENT_SECRET, method, path, query, body)})


async def envelope_of(rig: Rig, method: str, path_qs: str, body: bytes = b"") -> dict[str, object]:
    response = await rig.client.request(method, path_qs, data=body or None)
    assert response.status == 200
    answer: dict[str, object] = await response.json()
    return answer


async def test_signed_send_with_receiver_username_and_data_prefixed_is_refused(rig: Rig) -> None:
    await rig.bind("alice", "oALICE-openid-000000000000")
    await rig.bind("mallory", "oMALLORY-openid-0000000000")
    genuine = signed(SEND, {"receiver__username": "alice", "data": json.dumps({"heading": "h", "message": "disk 91%"})})
    forged = urlencode({"receiver__username": "mallory", "data": json.dumps({"heading": "h", "message": "forged"})})
    answer = await envelope_of(rig, "GET", f"{SEND}?{forged}&{genuine}")
    assert (answer["result"], answer["code"]) == (False, BAD_SIGNATURE)
    assert rig.wechat.count("template_send") == 0


async def test_signed_get_token_with_account_corp_prefixed_is_refused(rig: Rig) -> None:
    genuine = signed(GET_TOKEN, {"account": "main"})
    answer = await envelope_of(rig, "GET", f"{GET_TOKEN}?account=corp&{genuine}")
    assert (answer["result"], answer["code"], answer["data"]) == (False, BAD_SIGNATURE, None)
    assert rig.wechat.token_fetches() == 0


async def test_signed_get_token_with_account_corp_appended_is_refused(rig: Rig) -> None:
    genuine = signed(GET_TOKEN, {"account": "main"})
    answer = await envelope_of(rig, "GET", f"{GET_TOKEN}?{genuine}&account=corp")
    assert (answer["result"], answer["code"], answer["data"]) == (False, BAD_SIGNATURE, None)


async def test_signed_post_with_a_query_data_beside_the_body_is_refused(rig: Rig) -> None:
    body = json.dumps({"account": "main"}).encode()
    genuine = signed(GET_TOKEN, {}, method="POST", body=body)
    answer = await envelope_of(rig, "POST", f"{GET_TOKEN}?data=%7B%7D&{genuine}", body)
    assert (answer["result"], answer["code"]) == (False, BAD_SIGNATURE)


async def test_signed_get_token_unaltered_still_returns_the_token(rig: Rig) -> None:
    answer = await envelope_of(rig, "GET", f"{GET_TOKEN}?{signed(GET_TOKEN, {'account': 'main'})}")
    assert answer["result"] is True
