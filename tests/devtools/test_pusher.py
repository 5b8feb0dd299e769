"""The callback pusher: signing and encryption per mode, retries, and what the user ends up seeing."""

import asyncio

import pytest
from aiohttp import web

from devtools.emulator import SERVICE_ERROR, create_app, crypto
from devtools.emulator.xmlmsg import parse_xml
from tests.devtools.conftest import (
    AES_KEY,
    AGENTID,
    APPID,
    CORP_AES_KEY,
    CORP_TOKEN,
    CORPID,
    GH,
    TOKEN,
    make_config,
    mp_token,
    openid_of,
)


@pytest.fixture
def mode():
    return "plain"


@pytest.fixture
def config(callback, mode):
    return make_config(callback.url, mode=mode, push_timeout_s=0.3)


def text_reply(to_user, from_user, content):
    return (
        f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName><FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>1800000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content></xml>"
    )


def encrypted(inner, key, receive_id, token, signature=None):
    enc = crypto.encrypt(key, receive_id, inner.encode())
    sig = signature or crypto.signature(token, "1800000000", "42", enc)
    return (
        f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
        f"<TimeStamp>1800000000</TimeStamp><Nonce><![CDATA[42]]></Nonce></xml>"
    )


def replying(make_body):
    """A responder that answers each push with ``make_body(fields of the pushed message)``."""

    async def respond(request, body):
        outer = parse_xml(body)
        if "Encrypt" in outer and "FromUserName" not in outer:
            key, receive_id = (CORP_AES_KEY, CORPID) if "AgentID" in outer else (AES_KEY, APPID)
            outer = parse_xml(crypto.decrypt(key, receive_id, outer["Encrypt"]))
        return web.Response(text=make_body(outer), content_type="text/xml")

    return respond


async def act(emu, person, action, **body):
    resp = await emu.post(f"/_emu/users/{person}/{action}", json=body)
    return resp.status, await resp.json()


async def phone(emu, person):
    return [(m["channel"], m["text"]) for m in (await (await emu.get(f"/_emu/phones/{person}")).json())["messages"]]


async def test_plain_push_is_signed_and_carries_the_message(emu, callback):
    status, push = await act(emu, "dave", "follow")
    [(method, query, body)] = callback.requests
    assert status == 200 and push["status"] == "acknowledged" and push["shown"] is None
    assert method == "POST" and set(query) == {"signature", "timestamp", "nonce", "openid"}
    assert query["signature"] == crypto.signature(TOKEN, query["timestamp"], query["nonce"])
    fields = parse_xml(body)
    assert fields["ToUserName"] == GH and fields["FromUserName"] == query["openid"] == await openid_of(emu, "dave")
    assert (fields["MsgType"], fields["Event"], fields["EventKey"]) == ("event", "subscribe", "")
    assert await phone(emu, "dave") == []


@pytest.mark.parametrize("mode", ["safe"])
async def test_safe_push_body_holds_only_the_ciphertext(emu, callback):
    await act(emu, "alice", "text", content="hi")
    [(_, query, body)] = callback.requests
    outer = parse_xml(body)
    assert set(outer) == {"ToUserName", "Encrypt"} and outer["ToUserName"] == GH
    assert query["encrypt_type"] == "aes"
    assert query["msg_signature"] == crypto.signature(TOKEN, query["timestamp"], query["nonce"], outer["Encrypt"])
    inner = parse_xml(crypto.decrypt(AES_KEY, APPID, outer["Encrypt"]))
    assert (inner["MsgType"], inner["Content"]) == ("text", "hi") and inner["MsgId"].isdigit()


@pytest.mark.parametrize("mode", ["compat"])
async def test_compat_push_body_holds_plaintext_and_ciphertext(emu, callback):
    await act(emu, "alice", "text", content="hi")
    [(_, query, body)] = callback.requests
    outer = parse_xml(body)
    assert outer["Content"] == "hi" and "Encrypt" in outer and "msg_signature" in query
    assert parse_xml(crypto.decrypt(AES_KEY, APPID, outer["Encrypt"]))["Content"] == "hi"


async def test_plain_passive_reply_is_shown_to_the_user(emu, callback):
    callback.responder = replying(lambda f: text_reply(f["FromUserName"], f["ToUserName"], "绑定成功"))
    _, push = await act(emu, "alice", "text", content="bind")
    assert push["status"] == "replied" and push["shown"] == "绑定成功"
    assert await phone(emu, "alice") == [("mp.reply", "绑定成功")]


@pytest.mark.parametrize("mode", ["safe"])
async def test_safe_encrypted_reply_is_verified_decrypted_and_shown(emu, callback):
    callback.responder = replying(
        lambda f: encrypted(text_reply(f["FromUserName"], f["ToUserName"], "ok!"), AES_KEY, APPID, TOKEN)
    )
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "replied"
    assert await phone(emu, "alice") == [("mp.reply", "ok!")]


@pytest.mark.parametrize("mode", ["safe"])
async def test_safe_plaintext_reply_shows_service_error(emu, callback):
    callback.responder = replying(lambda f: text_reply(f["FromUserName"], f["ToUserName"], "leak"))
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "bad_reply" and "plaintext" in push["problem"]
    assert await phone(emu, "alice") == [("mp.service_error", SERVICE_ERROR)]


@pytest.mark.parametrize("mode", ["safe"])
async def test_encrypted_reply_with_wrong_signature_shows_service_error(emu, callback):
    callback.responder = replying(
        lambda f: encrypted(text_reply(f["FromUserName"], f["ToUserName"], "x"), AES_KEY, APPID, TOKEN, "0" * 40)
    )
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "bad_reply" and "MsgSignature" in push["problem"]
    assert push["shown"] == SERVICE_ERROR


async def test_reply_addressed_to_someone_else_is_malformed(emu, callback):
    callback.responder = replying(lambda f: text_reply("o-someone-else", f["ToUserName"], "x"))
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "bad_reply" and "ToUserName" in push["problem"]


async def test_garbage_reply_shows_service_error_without_retrying(emu, callback):
    async def ok_text(request, body):
        return web.Response(text="ok")

    callback.responder = ok_text
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "bad_reply" and len(push["attempts"]) == 1
    assert await phone(emu, "alice") == [("mp.service_error", SERVICE_ERROR)]


async def test_success_with_trailing_newline_is_not_success(emu, callback):
    async def sloppy(request, body):
        return web.Response(text="success\n")

    callback.responder = sloppy
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "bad_reply"


async def test_slow_server_gets_four_identical_deliveries_then_user_sees_error(emu, callback):
    async def slow(request, body):
        await asyncio.sleep(1)
        return web.Response(text="success")

    callback.responder = slow
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "failed" and len(push["attempts"]) == 4
    assert all("no answer within" in a["error"] for a in push["attempts"])
    assert len(callback.requests) == 4
    assert all(r == callback.requests[0] for r in callback.requests)
    assert await phone(emu, "alice") == [("mp.service_error", SERVICE_ERROR)]


async def test_failing_server_is_retried_until_it_answers(emu, callback):
    answers = iter([web.Response(status=503), web.Response(status=500), web.Response(text="success")])

    async def flaky(request, body):
        return next(answers)

    callback.responder = flaky
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "acknowledged"
    assert [a["http_status"] for a in push["attempts"]] == [503, 500, 200]
    assert await phone(emu, "alice") == []


async def test_unreachable_server_fails_after_four_attempts(aiohttp_client, unused_tcp_port, clock):
    config = make_config(f"http://127.0.0.1:{unused_tcp_port}/cb", push_timeout_s=0.3)
    emu = await aiohttp_client(create_app(config, clock=clock))
    _, push = await act(emu, "alice", "text", content="x")
    assert push["status"] == "failed" and len(push["attempts"]) == 4
    assert push["attempts"][0]["error"]


async def test_failed_unsubscribe_push_shows_the_user_nothing(emu, callback):
    async def broken(request, body):
        return web.Response(status=500)

    callback.responder = broken
    _, push = await act(emu, "alice", "unsubscribe")
    assert push["status"] == "failed" and push["shown"] is None
    assert await phone(emu, "alice") == []


async def create_ticket(emu, scene="bind-42"):
    body = {"action_name": "QR_STR_SCENE", "expire_seconds": 300, "action_info": {"scene": {"scene_str": scene}}}
    resp = await emu.post("/cgi-bin/qrcode/create", params={"access_token": await mp_token(emu)}, json=body)
    return await resp.json()


async def test_scan_by_non_follower_subscribes_with_qrscene_key(emu):
    qr = await create_ticket(emu)
    _, push = await act(emu, "dave", "scan", qr_url=qr["url"])
    message = push["message"]
    assert (message["Event"], message["EventKey"], message["Ticket"]) == ("subscribe", "qrscene_bind-42", qr["ticket"])
    users = {u["name"]: u for u in (await (await emu.get("/_emu/users")).json())["users"]}
    assert users["dave"]["follows"] == [APPID]


async def test_scan_by_follower_sends_scan_with_bare_scene(emu):
    qr = await create_ticket(emu)
    _, push = await act(emu, "alice", "scan", ticket=qr["ticket"])
    assert (push["message"]["Event"], push["message"]["EventKey"]) == ("SCAN", "bind-42")


async def test_scan_of_expired_code_is_gone(emu, clock):
    qr = await create_ticket(emu)
    clock.advance(300)
    status, body = await act(emu, "dave", "scan", ticket=qr["ticket"])
    assert status == 410 and "expired" in body["error"]


async def test_text_from_non_follower_is_refused(emu):
    status, body = await act(emu, "dave", "text", content="hi")
    assert status == 409 and "does not follow" in body["error"]


async def test_push_without_waiting_answers_202_and_can_be_polled(emu):
    status, pending = await act(emu, "alice", "text", content="x", wait=False)
    assert status == 202 and pending["status"] == "pending"
    for _ in range(100):
        polled = await (await emu.get(f"/_emu/pushes/{pending['id']}")).json()
        if polled["status"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert polled["status"] == "acknowledged"


async def test_wecom_push_is_encrypted_for_the_corp(emu, callback):
    await act(emu, "bob", "text", corp=CORPID, content="你好")
    [(_, query, body)] = callback.requests
    outer = parse_xml(body)
    assert set(query) == {"msg_signature", "timestamp", "nonce"}
    assert (outer["ToUserName"], outer["AgentID"]) == (CORPID, str(AGENTID))
    assert query["msg_signature"] == crypto.signature(CORP_TOKEN, query["timestamp"], query["nonce"], outer["Encrypt"])
    inner = parse_xml(crypto.decrypt(CORP_AES_KEY, CORPID, outer["Encrypt"]))
    assert (inner["FromUserName"], inner["Content"], inner["AgentID"]) == ("bob", "你好", str(AGENTID))


async def test_wecom_encrypted_reply_is_shown_in_the_app(emu, callback):
    callback.responder = replying(
        lambda f: encrypted(text_reply(f["FromUserName"], CORPID, "收到"), CORP_AES_KEY, CORPID, CORP_TOKEN)
    )
    _, push = await act(emu, "bob", "text", corp=CORPID, content="x")
    assert push["status"] == "replied"
    assert await phone(emu, "bob") == [("wecom.reply", "收到")]


async def test_wecom_plaintext_reply_is_refused_and_nothing_shown(emu, callback):
    callback.responder = replying(lambda f: text_reply(f["FromUserName"], CORPID, "x"))
    _, push = await act(emu, "bob", "text", corp=CORPID, content="x")
    assert push["status"] == "bad_reply"
    assert await phone(emu, "bob") == []


async def test_generic_event_push_carries_caller_fields(emu):
    _, push = await act(emu, "alice", "event", fields={"MsgType": "event", "Event": "CLICK", "EventKey": "menu1"})
    assert (push["message"]["Event"], push["message"]["EventKey"]) == ("CLICK", "menu1")
    assert push["message"]["ToUserName"] == GH


async def test_mp_verify_passes_when_server_echoes_echostr(emu, callback):
    async def echo(request, body):
        return web.Response(text=request.query["echostr"])

    callback.responder = echo
    result = await (await emu.post(f"/_emu/mp/{APPID}/verify")).json()
    [(method, query, _)] = callback.requests
    assert result["ok"] is True and method == "GET"
    assert query["signature"] == crypto.signature(TOKEN, query["timestamp"], query["nonce"])


async def test_mp_verify_fails_on_quoted_echostr(emu, callback):
    async def quoted(request, body):
        return web.json_response(request.query["echostr"])

    callback.responder = quoted
    result = await (await emu.post(f"/_emu/mp/{APPID}/verify")).json()
    assert result["ok"] is False and "Token验证失败" in result["problem"]


async def test_wecom_verify_requires_the_decrypted_echostr(emu, callback):
    async def decrypting(request, body):
        q = request.query
        assert q["msg_signature"] == crypto.signature(CORP_TOKEN, q["timestamp"], q["nonce"], q["echostr"])
        return web.Response(text=crypto.decrypt(CORP_AES_KEY, CORPID, q["echostr"]).decode())

    callback.responder = decrypting
    result = await (await emu.post(f"/_emu/wecom/{CORPID}/{AGENTID}/verify")).json()
    assert result["ok"] is True


async def test_wecom_verify_fails_when_echostr_is_echoed_encrypted(emu, callback):
    async def echo(request, body):
        return web.Response(text=request.query["echostr"])

    callback.responder = echo
    result = await (await emu.post(f"/_emu/wecom/{CORPID}/{AGENTID}/verify")).json()
    assert result["ok"] is False
