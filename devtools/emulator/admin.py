"""The admin API under ``/_emu``: control (reset, clock, faults, token revocation) and inspection.

Inspection answers the questions end-to-end tests ask: what each phone shows, how often each app
fetched a token, which API calls were made, how each callback push went. Every answer is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from devtools.emulator.errors import AdminError, NotFound
from devtools.emulator.keys import BACKGROUND, PUSHER, WORLD
from devtools.emulator.records import Call, Delivery, Push
from devtools.emulator.state import Clock, World


def reply(data: object, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body of an admin request; an empty body is ``{}``."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise AdminError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise AdminError("the body must be a JSON object")
    return body


def _since(request: web.Request) -> int:
    value = request.query.get("since", "0")
    if not value.isdigit():
        raise AdminError("since must be a sequence number")
    return int(value)


def _filtered(
    items: Iterable[Delivery | Call | Push], request: web.Request, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Records as JSON, keeping those whose fields equal every filter given in the query string."""
    since = _since(request)
    wanted = {n: request.query[n] for n in names if n in request.query}
    out = []
    for item in items:
        data = item.as_json()
        if data.get("seq", data.get("id", 0)) > since and all(str(data.get(k)) == v for k, v in wanted.items()):
            out.append(data)
    return out


async def health(request: web.Request) -> web.Response:
    return reply({"ok": True})


def _describe(world: World) -> dict[str, Any]:
    config = world.config
    return {
        "mp_apps": [
            {
                "appid": a.appid,
                "original_id": a.original_id,
                "mode": a.mode,
                "callback_url": a.callback_url,
                "templates": [
                    {"template_id": t.template_id, "title": t.title, "fields": t.fields} for t in a.templates
                ],
            }
            for a in config.mp_apps
        ],
        "wecom_corps": [
            {
                "corpid": c.corpid,
                "members": sorted(world.members[c.corpid]),
                "agents": [{"agentid": a.agentid, "callback_url": a.callback_url} for a in c.agents],
            }
            for c in config.wecom_corps
        ],
        "users": [person_json(world, name) for name in world.people],
    }


def person_json(world: World, name: str) -> dict[str, Any]:
    person = world.person(name)
    return {
        "name": person.name,
        "openids": dict(person.openids),
        "follows": sorted(a for a, o in person.openids.items() if world.follows(a, o)),
        "wecom": dict(person.wecom),
    }


async def describe(request: web.Request) -> web.Response:
    """GET /_emu/config: apps, corps and people, without secrets."""
    return reply(_describe(request.app[WORLD]))


async def reset(request: web.Request) -> web.Response:
    """POST /_emu/reset: pending pushes cancelled, world back to the configuration, clock unshifted."""
    await request.app[BACKGROUND].close()
    world = request.app[WORLD]
    world.reset()
    if isinstance(world.clock, Clock):
        world.clock.offset = 0.0
    return reply({"ok": True})


async def advance_clock(request: web.Request) -> web.Response:
    """POST /_emu/clock {"advance_s"}: move the emulator's clock forward (tokens, codes, windows)."""
    body = await read_body(request)
    seconds = body.get("advance_s")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise AdminError('"advance_s" must be a non-negative number')
    clock = request.app[WORLD].clock
    if not isinstance(clock, Clock):
        raise AdminError("this emulator runs on an injected clock that cannot be advanced")
    clock.advance(float(seconds))
    return reply({"now": clock(), "offset_s": clock.offset})


async def list_faults(request: web.Request) -> web.Response:
    return reply({"faults": [f.as_json() for f in request.app[WORLD].faults.active()]})


async def add_fault(request: web.Request) -> web.Response:
    """POST /_emu/faults {"path", "kind", "times", "errcode", "errmsg", "latency_s"}."""
    fault = request.app[WORLD].faults.add(await read_body(request))
    return reply(fault.as_json(), status=201)


async def clear_faults(request: web.Request) -> web.Response:
    return reply({"cleared": request.app[WORLD].faults.clear()})


async def revoke_tokens(request: web.Request) -> web.Response:
    """POST /_emu/tokens/revoke {"errcode": 40001|40014|42001, "app"?}: live tokens stop working."""
    body = await read_body(request)
    errcode, owner = body.get("errcode", 40001), body.get("app")
    if errcode not in (40001, 40014, 42001) or isinstance(errcode, bool):
        raise AdminError('"errcode" must be 40001, 40014 or 42001')
    if owner is not None and not isinstance(owner, str):
        raise AdminError('"app" must be an appid or corpid')
    return reply({"revoked": request.app[WORLD].tokens.revoke(errcode, owner)})


async def token_counts(request: web.Request) -> web.Response:
    """GET /_emu/tokens: successful token fetches per app and kind."""
    return reply({"counts": request.app[WORLD].tokens.snapshot()})


async def calls(request: web.Request) -> web.Response:
    """GET /_emu/calls?path=&app=&errcode=&since=: the WeChat API call log."""
    world = request.app[WORLD]
    return reply({"calls": _filtered(world.records.calls, request, ("path", "app", "errcode", "method"))})


async def deliveries(request: web.Request) -> web.Response:
    """GET /_emu/deliveries?person=&to=&app=&channel=&status=&since=: every message meant for a phone."""
    names = ("person", "to", "app", "channel", "status")
    return reply({"deliveries": _filtered(request.app[WORLD].records.deliveries, request, names)})


def _phone(world: World, name: str) -> list[dict[str, Any]]:
    keep = ("seq", "at", "channel", "app", "agentid", "text", "detail")
    return [{k: v for k, v in d.as_json().items() if k in keep} for d in world.records.phone(name)]


async def phones(request: web.Request) -> web.Response:
    """GET /_emu/phones: what every phone shows, by person."""
    world = request.app[WORLD]
    return reply({"phones": {name: _phone(world, name) for name in world.people}})


async def phone(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    name = world.person(request.match_info["name"]).name
    return reply({"name": name, "messages": _phone(world, name)})


async def pushes(request: web.Request) -> web.Response:
    """GET /_emu/pushes?app=&person=&status=&since=: every callback push and its outcome."""
    found = _filtered(request.app[WORLD].records.pushes.values(), request, ("app", "person", "status"))
    return reply({"pushes": found})


async def push(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    found = request.app[WORLD].records.pushes.get(int(raw)) if raw.isdigit() else None
    if found is None:
        raise NotFound(f"no push {raw!r}")
    return reply(found.as_json())


async def qrcodes(request: web.Request) -> web.Response:
    return reply({"qrcodes": [t.as_json() for t in request.app[WORLD].tickets.values()]})


async def verify_mp(request: web.Request) -> web.Response:
    """POST /_emu/mp/{appid}/verify: the MP console's server-URL check against callback_url."""
    world = request.app[WORLD]
    app = world.mp_app(request.match_info["appid"])
    return reply(await request.app[PUSHER].verify_mp(app))


async def verify_wecom(request: web.Request) -> web.Response:
    """POST /_emu/wecom/{corpid}/{agentid}/verify: WeCom's check (encrypted echostr)."""
    world = request.app[WORLD]
    corp = world.corp(request.match_info["corpid"])
    raw = request.match_info["agentid"]
    agent = world.agent(corp, int(raw) if raw.isdigit() else -1)
    return reply(await request.app[PUSHER].verify_wecom(corp, agent))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_emu/health", health)
    r.add_get("/_emu/config", describe)
    r.add_post("/_emu/reset", reset)
    r.add_post("/_emu/clock", advance_clock)
    r.add_get("/_emu/faults", list_faults)
    r.add_post("/_emu/faults", add_fault)
    r.add_delete("/_emu/faults", clear_faults)
    r.add_post("/_emu/tokens/revoke", revoke_tokens)
    r.add_get("/_emu/tokens", token_counts)
    r.add_get("/_emu/calls", calls)
    r.add_get("/_emu/deliveries", deliveries)
    r.add_get("/_emu/phones", phones)
    r.add_get("/_emu/phones/{name}", phone)
    r.add_get("/_emu/pushes", pushes)
    r.add_get("/_emu/pushes/{id}", push)
    r.add_get("/_emu/qrcodes", qrcodes)
    r.add_post("/_emu/mp/{appid}/verify", verify_mp)
    r.add_post("/_emu/wecom/{corpid}/{agentid}/verify", verify_wecom)
