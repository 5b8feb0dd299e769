"""WeCom web login: the QR-login pages, with a "log in as <member>" button standing in for the phone.

``/wwopen/sso/qrConnect`` (classic) and ``/wwlogin/sso/login`` (newer, ``login_type=CorpApp``)
show one button per member; pressing it issues a single-use code and redirects the browser to
``redirect_uri?code=…&state=…``, which the app exchanges with ``/cgi-bin/auth/getuserinfo``.
``complete_login`` does the same for the admin API, without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from aiohttp import web
from yarl import URL

from devtools.emulator.config import WecomAgent, WecomCorp
from devtools.emulator.errors import AdminError, NotFound
from devtools.emulator.keys import CALLER, WORLD
from devtools.emulator.state import World

CONFIRM_PATH = "/wwlogin/sso/confirm"


@dataclass(frozen=True)
class LoginRequest:
    corp: WecomCorp
    agent: WecomAgent
    redirect_uri: str
    state: str | None


def parse_login(world: World, params: Mapping[str, str], *, require_login_type: bool = False) -> LoginRequest:
    """Check a login request's parameters as WeCom does before it shows the QR code."""
    if require_login_type and params.get("login_type") != "CorpApp":
        raise AdminError("login_type must be CorpApp for a self-built app")
    corp = world.config.corp(params.get("appid", ""))
    if corp is None:
        raise NotFound(f"appid {params.get('appid', '')!r} is not a known corpid")
    agentid = params.get("agentid", "")
    agent = corp.agent(int(agentid)) if agentid.isdigit() else None
    if agent is None:
        raise NotFound(f"agentid {agentid!r} is not an agent of {corp.corpid}")
    redirect_uri = params.get("redirect_uri", "")
    target = URL(redirect_uri)
    if target.scheme not in ("http", "https") or not target.host:
        raise AdminError(f"redirect_uri {redirect_uri!r} is not an absolute http(s) URL")
    return LoginRequest(corp, agent, redirect_uri, params.get("state"))


def complete_login(world: World, login: LoginRequest, userid: str) -> tuple[str, str]:
    """The member logs in: a fresh code, and the URL the browser is redirected to."""
    if userid not in world.members[login.corp.corpid]:
        raise NotFound(f"{userid!r} is not a member of {login.corp.corpid}")
    code = world.issue_code(login.corp.corpid, login.agent.agentid, userid)
    query = {"code": code.code}
    if login.state is not None:
        query["state"] = login.state
    return code.code, str(URL(login.redirect_uri).update_query(query))


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=html, content_type="text/html", status=status)


def _parse_or_page(request: web.Request, params: Mapping[str, str], require: bool) -> LoginRequest | web.Response:
    try:
        login = parse_login(request.app[WORLD], params, require_login_type=require)
    except AdminError as exc:
        return _page("登录失败", f"<p>{escape(exc.message)}</p>", status=exc.status)
    request[CALLER] = login.corp.corpid
    return login


async def login_page(request: web.Request) -> web.Response:
    """The QR-login page: one form button per member of the corp."""
    login = _parse_or_page(request, request.query, request.path.startswith("/wwlogin"))
    if isinstance(login, web.Response):
        return login
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(value)}">'
        for name, value in (
            ("appid", login.corp.corpid),
            ("agentid", str(login.agent.agentid)),
            ("redirect_uri", login.redirect_uri),
            ("state", login.state),
        )
        if value is not None
    )
    buttons = "".join(
        f'<li><form method="post" action="{CONFIRM_PATH}">{hidden}'
        f'<button type="submit" name="userid" value="{escape(m)}">log in as {escape(m)}</button></form></li>'
        for m in sorted(request.app[WORLD].members[login.corp.corpid])
    )
    members = f'<p>Scan with WeCom — or choose a member:</p><ul id="members">{buttons}</ul>'
    return _page("企业微信登录 (emulated)", members)


async def confirm(request: web.Request) -> web.Response:
    """The member confirmed on their phone: redirect with a fresh code."""
    form = await request.post()
    params = {k: v for k, v in form.items() if isinstance(v, str)}
    login = _parse_or_page(request, params, False)
    if isinstance(login, web.Response):
        return login
    try:
        _code, location = complete_login(request.app[WORLD], login, params.get("userid", ""))
    except AdminError as exc:
        return _page("登录失败", f"<p>{escape(exc.message)}</p>", status=exc.status)
    raise web.HTTPFound(location)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/wwopen/sso/qrConnect", login_page)
    app.router.add_get("/wwlogin/sso/login", login_page)
    app.router.add_post(CONFIRM_PATH, confirm)
