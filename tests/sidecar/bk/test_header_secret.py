"""Finding F8: a lone surrogate as ``bk_app_secret`` in ``X-Bkapi-Authorization`` is a wrong secret.

JSON's ``"\\ud800"`` escape decodes to a string that is not text: comparing it with the client's
secret raised ``UnicodeEncodeError`` and the caller got a 500 with a traceback in the log. It is
now what any other wrong secret is: BlueKing's bad-app-secret envelope.
"""

from __future__ import annotations

import pytest

from tests.sidecar.esb.conftest import Rig

GET_TOKEN = "/api/c/compapi/weixin/get_token/"
BAD_APP_SECRET = 1306403


async def test_lone_surrogate_app_secret_in_authorization_header_is_a_bad_app_secret(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    header = '{"bk_app_code": "bk_paas", "bk_app_secret": "\\ud800"}'
    response = await rig.client.get(GET_TOKEN, headers={"X-Bkapi-Authorization": header})
    assert response.status == 200
    answer = await response.json()
    assert (answer["result"], answer["code"], answer["data"]) == (False, BAD_APP_SECRET, None)
    assert not [r for r in caplog.records if r.exc_info], "a wrong secret is no crash"
