"""The Official Account (MP) API: tokens, template and customer-service messages, QR codes.

Paths and answers follow api.weixin.qq.com; errors are HTTP 200 with an errcode, as WeChat does.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from aiohttp import web

from common.config import Secret
from devtools.emulator.calls import authenticate, ok, read_json, text_field
from devtools.emulator.config import MpApp
from devtools.emulator.errors import ApiError
from devtools.emulator.jsonwire import wechat_json
from devtools.emulator.keys import BACKGROUND, CALLER, PUSHER, WORLD
from devtools.emulator.render import render_template
from devtools.emulator.state import World

MAX_QR_EXPIRE_S = 2_592_000
_QR_ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")


def _credentials(request: web.Request, appid: object, secret: object, grant_type: object) -> MpApp:
    """The app whose appid and secret these are, or WeChat's error for the first thing wrong.

    The values are unchecked (a query string or a JSON body), hence ``object``: each is narrowed
    here, in the order WeChat reports its errors.
    """
    if not appid:
        raise ApiError(41002, "appid missing")
    if not secret:
        raise ApiError(41004, "appsecret missing")
    if grant_type != "client_credential":
        raise ApiError(40002, "invalid grant_type")
    app = request.app[WORLD].config.mp_app(str(appid))
    if app is None:
        raise ApiError(40013, "invalid appid")
    request[CALLER] = app.appid
    if not isinstance(secret, str) or not Secret(app.secret).matches(secret):
        raise ApiError(40125, "invalid appsecret")
    return app


async def token(request: web.Request) -> web.Response:
    """GET /cgi-bin/token: a new token each time; the previous one dies after the overlap."""
    q = request.query
    app = _credentials(request, q.get("appid"), q.get("secret"), q.get("grant_type"))
    world = request.app[WORLD]
    issued = world.tokens.classic(app.appid)
    return wechat_json({"access_token": issued.value, "expires_in": issued.expires_in(world.clock())})


async def stable_token(request: web.Request) -> web.Response:
    """POST /cgi-bin/stable_token: isolated from classic tokens; force_refresh is rationed."""
    if request.method != "POST":
        raise ApiError(43002, "require POST method")
    body = await read_json(request)
    app = _credentials(request, body.get("appid"), body.get("secret"), body.get("grant_type"))
    force = body.get("force_refresh", False)
    if not isinstance(force, bool):
        raise ApiError(47001, "data format error")
    world = request.app[WORLD]
    issued = world.tokens.stable(app.appid, force=force)
    return wechat_json({"access_token": issued.value, "expires_in": issued.expires_in(world.clock())})


def _app(request: web.Request) -> tuple[World, MpApp]:
    world = request.app[WORLD]
    owner = authenticate(request, "mp").owner
    app = world.config.mp_app(owner)
    assert app is not None  # tokens are only issued to configured apps
    return world, app


def _template_data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("value"), str | int | float) for v in data.values()
    ):
        raise ApiError(47001, "data format error")
    for name in ("url", "client_msg_id"):
        if name in body and not isinstance(body[name], str):
            raise ApiError(47001, "data format error")
    mini = body.get("miniprogram")
    if mini is not None and not (isinstance(mini, dict) and isinstance(mini.get("appid"), str)):
        raise ApiError(47001, "data format error")
    return data


def _recipient(world: World, app: MpApp, body: dict[str, Any]) -> tuple[str, str]:
    """(openid, person) of a subscribed user of this app, or 40003 / 43004."""
    openid = text_field(body, "touser", 40003, "invalid openid")
    person = world.person_by_openid(app.appid, openid)
    if person is None:
        raise ApiError(40003, "invalid openid")
    return openid, person


async def template_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/message/template/send, validated as WeChat does, deduped by client_msg_id."""
    world, app = _app(request)
    body = await read_json(request)
    data = _template_data(body)
    openid, person = _recipient(world, app, body)
    template = app.template(text_field(body, "template_id", 40037, "invalid template_id"))
    if template is None:
        raise ApiError(40037, "invalid template_id")
    if not world.follows(app.appid, openid):
        raise ApiError(43004, "require subscribe")
    text, detail = render_template(template, data, body.get("url"))
    now = world.clock()
    client_msg_id = body.get("client_msg_id")
    if client_msg_id:
        earlier = world.client_msg_ids.get((app.appid, openid, client_msg_id))
        if earlier is not None and now - earlier[0] < world.config.timing.client_msg_id_window_s:
            world.deliver(
                person=person,
                channel="mp.template",
                app=app.appid,
                to=openid,
                text=text,
                detail=detail,
                status="duplicate",
                reason=f"client_msg_id {client_msg_id!r} was sent within the window",
                msgid=str(earlier[1]),
            )
            return ok(msgid=earlier[1])
    msgid = world.next_msgid()
    if client_msg_id:
        world.client_msg_ids[app.appid, openid, client_msg_id] = (now, msgid)
    world.deliver(
        person=person, channel="mp.template", app=app.appid, to=openid, text=text, detail=detail, msgid=str(msgid)
    )
    if app.template_job_finish_event and app.callback_url:
        _report_job_finished(request, app, person, openid, msgid)
    return ok(msgid=msgid)


def _report_job_finished(request: web.Request, app: MpApp, person: str, openid: str, msgid: int) -> None:
    """WeChat's TEMPLATESENDJOBFINISH event, pushed in the background after a template send."""
    fields = {
        "ToUserName": app.original_id,
        "FromUserName": openid,
        "CreateTime": int(request.app[WORLD].clock()),
        "MsgType": "event",
        "Event": "TEMPLATESENDJOBFINISH",
        "MsgID": msgid,
        "Status": "success",
    }
    pusher = request.app[PUSHER]
    push, out = pusher.mp(app, person, fields)
    request.app[BACKGROUND].spawn(pusher.send(push, out))


async def custom_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/message/custom/send: text within 48 h of the user's last interaction."""
    world, app = _app(request)
    body = await read_json(request)
    openid, person = _recipient(world, app, body)
    if body.get("msgtype") != "text":
        raise ApiError(40008, "invalid message type")
    text = body.get("text")
    if not isinstance(text, dict) or not isinstance(text.get("content"), str) or not text["content"]:
        raise ApiError(47001, "data format error")
    last = world.last_interaction.get((app.appid, openid))
    if not world.follows(app.appid, openid) or last is None:
        raise ApiError(45015, "response out of time limit or subscription is canceled")
    if world.clock() - last > world.config.timing.custom_window_s:
        raise ApiError(45015, "response out of time limit or subscription is canceled")
    msgid = world.next_msgid()
    world.deliver(person=person, channel="mp.custom", app=app.appid, to=openid, text=text["content"], msgid=str(msgid))
    return ok()


def _scene(action: str, info: object) -> str:
    scene = info.get("scene") if isinstance(info, dict) else None
    if not isinstance(scene, dict):
        raise ApiError(40053, "invalid action info")
    if action.endswith("STR_SCENE"):
        value = scene.get("scene_str")
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            raise ApiError(40053, "invalid action info")
        return value
    value = scene.get("scene_id")
    upper = 100_000 if action == "QR_LIMIT_SCENE" else 2**32 - 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise ApiError(40053, "invalid action info")
    return str(value)


async def qrcode_create(request: web.Request) -> web.Response:
    """POST /cgi-bin/qrcode/create: a parametric QR code (temporary or permanent)."""
    world, app = _app(request)
    body = await read_json(request)
    action = body.get("action_name")
    if action not in _QR_ACTIONS:
        raise ApiError(40052, "invalid action name")
    scene = _scene(action, body.get("action_info"))
    if "LIMIT" in action:
        ticket = world.add_ticket(app.appid, action, scene, None)
        return wechat_json({"ticket": ticket.ticket, "url": ticket.url})
    expire = body.get("expire_seconds", world.config.timing.qr_default_expire_s)
    if isinstance(expire, bool) or not isinstance(expire, int) or expire < 1:
        raise ApiError(47001, "data format error")
    expire = min(expire, MAX_QR_EXPIRE_S)
    ticket = world.add_ticket(app.appid, action, scene, expire)
    return wechat_json({"ticket": ticket.ticket, "expire_seconds": expire, "url": ticket.url})


async def showqrcode(request: web.Request) -> web.Response:
    """GET /cgi-bin/showqrcode?ticket=…: the QR image (PNG) encoding the ticket's url."""
    world = request.app[WORLD]
    ticket = world.tickets.get(request.query.get("ticket", ""))
    if ticket is None or (ticket.expires_at is not None and world.clock() >= ticket.expires_at):
        raise web.HTTPNotFound(text="no such QR ticket, or it has expired")
    request[CALLER] = ticket.appid
    buffer = io.BytesIO()
    segno.make(ticket.url, error="m").save(buffer, kind="png", scale=6, border=4)
    return web.Response(body=buffer.getvalue(), content_type="image/png")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_route("*", "/cgi-bin/stable_token", stable_token)
    app.router.add_post("/cgi-bin/message/template/send", template_send)
    app.router.add_post("/cgi-bin/message/custom/send", custom_send)
    app.router.add_post("/cgi-bin/qrcode/create", qrcode_create)
    app.router.add_get("/cgi-bin/showqrcode", showqrcode)
