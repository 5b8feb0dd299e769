"""The admin API for simulated people: ``/_emu/users`` and ``/_emu/users/{name}/<action>``.

Actions that make WeChat push a callback answer with the push's outcome (status, attempts, what
the user saw). With ``"wait": false`` they answer 202 at once with the pending push; poll
``/_emu/pushes/{id}`` for the outcome.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from devtools.emulator import simulate
from devtools.emulator.admin import person_json, read_body, reply
from devtools.emulator.config import MpApp, User, WecomAgent, WecomCorp
from devtools.emulator.errors import AdminError
from devtools.emulator.keys import BACKGROUND, PUSHER, WORLD
from devtools.emulator.login import complete_login, parse_login
from devtools.emulator.state import Person, World

LOGIN_PATHS = {"/wwopen/sso/qrConnect": False, "/wwlogin/sso/login": True}


def _opt_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise AdminError(f'"{name}" must be a string')
    return value


def _opt_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise AdminError(f'"{name}" must be an integer')
    return value


def _str_map(body: dict[str, Any], name: str) -> dict[str, str]:
    value = body.get(name, {})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise AdminError(f'"{name}" must map ids to strings')
    return value


async def add_user(request: web.Request) -> web.Response:
    """POST /_emu/users {"name", "openids"?, "follows"?, "wecom"?}: a new person, at runtime."""
    body = await read_body(request)
    follows = body.get("follows", [])
    if not isinstance(follows, list) or not all(isinstance(a, str) for a in follows):
        raise AdminError('"follows" must be a list of appids')
    name = _opt_str(body, "name") or ""
    user = User(name=name, openids=_str_map(body, "openids"), follows=tuple(follows), wecom=_str_map(body, "wecom"))
    world = request.app[WORLD]
    world.add_person(user)
    return reply(person_json(world, name), status=201)


async def list_users(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    return reply({"users": [person_json(world, name) for name in world.people]})


def _wait(body: dict[str, Any]) -> bool:
    wait = body.get("wait", True)
    if not isinstance(wait, bool):
        raise AdminError('"wait" must be true or false')
    return wait


async def _run(request: web.Request, prepared: simulate.Prepared, wait: bool) -> web.Response:
    push, out = prepared
    pusher = request.app[PUSHER]
    if not wait:
        request.app[BACKGROUND].spawn(pusher.send(push, out))
        return reply(push.as_json(), status=202)
    return reply((await pusher.send(push, out)).as_json())


def _target(world: World, body: dict[str, Any]) -> MpApp | tuple[WecomCorp, WecomAgent]:
    """MP app ("app") or WeCom agent ("corp"/"agentid"); the only MP app when neither is named."""
    if "corp" in body or "agentid" in body or (not world.config.mp_apps and "app" not in body):
        corp = world.corp(_opt_str(body, "corp"))
        return corp, world.agent(corp, _opt_int(body, "agentid"))
    return world.mp_app(_opt_str(body, "app"))


async def _setup(request: web.Request) -> tuple[World, Person, dict[str, Any]]:
    world = request.app[WORLD]
    person = world.person(request.match_info["name"])
    return world, person, await read_body(request)


async def follow(request: web.Request) -> web.Response:
    """POST /_emu/users/{name}/follow {"app"?}: subscribe by search (empty EventKey)."""
    world, person, body = await _setup(request)
    app = world.mp_app(_opt_str(body, "app"))
    return await _run(request, simulate.follow(world, request.app[PUSHER], person, app), _wait(body))


async def scan(request: web.Request) -> web.Response:
    """POST /_emu/users/{name}/scan {"ticket" | "qr_url"}: scan a parametric QR code."""
    world, person, body = await _setup(request)
    ticket = world.find_ticket(_opt_str(body, "ticket"), _opt_str(body, "qr_url"))
    return await _run(request, simulate.scan(world, request.app[PUSHER], person, ticket), _wait(body))


async def unsubscribe(request: web.Request) -> web.Response:
    """POST /_emu/users/{name}/unsubscribe {"app"?}."""
    world, person, body = await _setup(request)
    app = world.mp_app(_opt_str(body, "app"))
    return await _run(request, simulate.unsubscribe(world, request.app[PUSHER], person, app), _wait(body))


async def text(request: web.Request) -> web.Response:
    """POST /_emu/users/{name}/text {"content", "app"? | "corp"?, "agentid"?}: the user writes."""
    world, person, body = await _setup(request)
    content = _opt_str(body, "content")
    if not content:
        raise AdminError('"content" is required')
    target = _target(world, body)
    pusher = request.app[PUSHER]
    if isinstance(target, MpApp):
        prepared = simulate.mp_text(world, pusher, person, target, content)
    else:
        prepared = simulate.wecom_text(world, pusher, person, *target, content)
    return await _run(request, prepared, _wait(body))


async def event(request: web.Request) -> web.Response:
    """POST /_emu/users/{name}/event {"fields", "app"? | "corp"?, "agentid"?}: any callback."""
    world, person, body = await _setup(request)
    prepared = simulate.custom(world, request.app[PUSHER], person, _target(world, body), body.get("fields"))
    return await _run(request, prepared, _wait(body))


async def wecom_login(request: web.Request) -> web.Response:
    """POST /_emu/users/{name}/wecom-login {"login_url"} or {"redirect_uri", "state"?, "corp"?, "agentid"?}.

    What pressing "log in as <member>" on the login page does: answers the code and the URL the
    browser would be redirected to (following it is the caller's job: it needs their cookies).
    """
    world, person, body = await _setup(request)
    login_url = _opt_str(body, "login_url")
    if login_url is not None:
        url = URL(login_url)
        if url.path not in LOGIN_PATHS:
            raise AdminError(f"login_url path must be one of {', '.join(LOGIN_PATHS)}")
        login = parse_login(world, dict(url.query), require_login_type=LOGIN_PATHS[url.path])
    else:
        corp = world.corp(_opt_str(body, "corp"))
        agent = world.agent(corp, _opt_int(body, "agentid"))
        params = {"appid": corp.corpid, "agentid": str(agent.agentid), "redirect_uri": _opt_str(body, "redirect_uri")}
        if "state" in body:
            params["state"] = _opt_str(body, "state")
        login = parse_login(world, {k: v for k, v in params.items() if v is not None})
    userid = person.wecom.get(login.corp.corpid)
    if userid is None:
        raise AdminError(f"{person.name} is not a member of {login.corp.corpid}")
    code, redirect_url = complete_login(world, login, userid)
    return reply({"code": code, "userid": userid, "redirect_url": redirect_url})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_emu/users", list_users)
    r.add_post("/_emu/users", add_user)
    for name, handler in (
        ("follow", follow),
        ("scan", scan),
        ("unsubscribe", unsubscribe),
        ("text", text),
        ("event", event),
        ("wecom-login", wecom_login),
    ):
        r.add_post(f"/_emu/users/{{name}}/{name}", handler)
