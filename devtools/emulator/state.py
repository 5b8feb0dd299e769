"""The emulated world: people and their ids, who follows what, QR tickets, login codes, send history.

One :class:`World` per running emulator, owned by the app (``WORLD`` app key). ``reset`` puts it
back to the configured starting point. Everything that depends on time reads the injected clock.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtools.emulator.config import EmulatorConfig, MpApp, User, WecomAgent, WecomCorp
from devtools.emulator.errors import AdminError, ApiError, Conflict, NotFound
from devtools.emulator.faults import FaultBook
from devtools.emulator.records import Channel, Delivery, DeliveryExtras, DeliveryStatus, Records
from devtools.emulator.tokens import TokenBook

if TYPE_CHECKING:  # only for the annotation: typing.Unpack on **kwargs is Python 3.12
    from typing_extensions import Unpack


class Clock:
    """Wall time plus an offset the admin API can advance (to expire tokens or codes on demand)."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self._base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self._base() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Person:
    name: str
    openids: dict[str, str] = field(default_factory=dict)
    wecom: dict[str, str] = field(default_factory=dict)


@dataclass
class QrTicket:
    ticket: str
    appid: str
    action: str
    scene: str
    url: str
    created_at: float
    expires_at: float | None

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class LoginCode:
    code: str
    corpid: str
    agentid: int
    userid: str
    expires_at: float
    used: bool = False


def generated_openid(appid: str, name: str) -> str:
    """A stable 28-character openid per (app, person), shaped like WeChat's."""
    digest = hashlib.sha256(f"{appid}:{name}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


class World:
    """Mutable state behind every endpoint; single-threaded (event loop), so no locks."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        """Back to the configured starting point: tokens, faults, records and follows included."""
        self.tokens = TokenBook(self.config.timing, self.clock)
        self.faults = FaultBook()
        self.records = Records()
        self.people: dict[str, Person] = {}
        self.members: dict[str, set[str]] = {c.corpid: set(c.members) for c in self.config.wecom_corps}
        self.subscribed: set[tuple[str, str]] = set()
        self.last_interaction: dict[tuple[str, str], float] = {}
        self.tickets: dict[str, QrTicket] = {}
        self.codes: dict[str, LoginCode] = {}
        self.client_msg_ids: dict[tuple[str, str, str], tuple[float, int]] = {}
        self.wecom_sent: dict[tuple[str, int, str], deque[float]] = defaultdict(deque)
        self.wecom_recent: dict[tuple[str, int, str, str], float] = {}  # (corpid, agentid, userid, content)
        self._by_openid: dict[tuple[str, str], str] = {}
        self._by_userid: dict[tuple[str, str], str] = {}
        self._msgid = 2_000_000_000 + secrets.randbelow(10**8)
        for user in self.config.users:
            self.add_person(user)
        for corp in self.config.wecom_corps:
            for member in corp.members:
                if (corp.corpid, member) not in self._by_userid:
                    self._attach_member(corp.corpid, member)

    # -- people -----------------------------------------------------------------------------

    def add_person(self, user: User) -> Person:
        """A new person; openids are generated for every MP app they were not given one for."""
        if not user.name:
            raise AdminError("a user needs a name")
        if user.name in self.people:
            raise Conflict(f"user {user.name!r} already exists")
        for appid in (*user.follows, *user.openids):
            self.mp_app(appid)
        for corpid, userid in user.wecom.items():
            self.corp(corpid)
            if (corpid, userid) in self._by_userid:
                raise Conflict(f"{corpid} member {userid!r} already belongs to {self._by_userid[corpid, userid]!r}")
        apps = self.config.mp_apps
        openids = {a.appid: user.openids.get(a.appid) or generated_openid(a.appid, user.name) for a in apps}
        for appid, openid in openids.items():
            if (appid, openid) in self._by_openid:
                raise Conflict(f"openid {openid!r} already belongs to {self._by_openid[appid, openid]!r}")
        person = Person(name=user.name, openids=openids)
        self._by_openid.update({(appid, openid): user.name for appid, openid in openids.items()})
        self.people[user.name] = person
        for appid in user.follows:
            self.subscribed.add((appid, person.openids[appid]))
        for corpid, userid in user.wecom.items():
            self._link_member(person, corpid, userid)
        return person

    def _attach_member(self, corpid: str, userid: str) -> None:
        """A configured member nobody claimed: the person of that name, created if needed."""
        person = self.people.get(userid) or self.add_person(User(name=userid))
        if corpid not in person.wecom:
            self._link_member(person, corpid, userid)

    def _link_member(self, person: Person, corpid: str, userid: str) -> None:
        person.wecom[corpid] = userid
        self._by_userid[corpid, userid] = person.name
        self.members[corpid].add(userid)

    def person(self, name: str) -> Person:
        if name not in self.people:
            raise NotFound(f"no user named {name!r}")
        return self.people[name]

    def person_by_openid(self, appid: str, openid: str) -> str | None:
        return self._by_openid.get((appid, openid))

    def person_by_userid(self, corpid: str, userid: str) -> str | None:
        return self._by_userid.get((corpid, userid))

    # -- apps -------------------------------------------------------------------------------

    def mp_app(self, appid: str | None) -> MpApp:
        """The app named, or the only one when none is named (convenience for the admin API)."""
        if appid is None:
            if len(self.config.mp_apps) != 1:
                raise AdminError("name the MP app (\"app\"): there is not exactly one")
            return self.config.mp_apps[0]
        app = self.config.mp_app(appid)
        if app is None:
            raise NotFound(f"no MP app {appid!r}")
        return app

    def corp(self, corpid: str | None) -> WecomCorp:
        if corpid is None:
            if len(self.config.wecom_corps) != 1:
                raise AdminError("name the WeCom corp (\"corp\"): there is not exactly one")
            return self.config.wecom_corps[0]
        corp = self.config.corp(corpid)
        if corp is None:
            raise NotFound(f"no WeCom corp {corpid!r}")
        return corp

    def agent(self, corp: WecomCorp, agentid: int | None) -> WecomAgent:
        if agentid is None:
            if len(corp.agents) != 1:
                raise AdminError("name the WeCom agent (\"agentid\"): there is not exactly one")
            return corp.agents[0]
        agent = corp.agent(agentid)
        if agent is None:
            raise NotFound(f"no agent {agentid} in corp {corp.corpid!r}")
        return agent

    # -- follows, tickets, codes ------------------------------------------------------------

    def follows(self, appid: str, openid: str) -> bool:
        return (appid, openid) in self.subscribed

    def touch(self, appid: str, openid: str) -> None:
        """The user interacted: opens the 48-hour customer-service window."""
        self.last_interaction[appid, openid] = self.clock()

    def add_ticket(self, appid: str, action: str, scene: str, expire_s: int | None) -> QrTicket:
        now = self.clock()
        ticket = QrTicket(
            ticket=base64.b64encode(secrets.token_bytes(72)).decode("ascii"),
            appid=appid,
            action=action,
            scene=scene,
            url=f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}",
            created_at=now,
            expires_at=None if expire_s is None else now + expire_s,
        )
        self.tickets[ticket.ticket] = ticket
        return ticket

    def find_ticket(self, ticket: str | None = None, url: str | None = None) -> QrTicket:
        """A ticket by its value or by the QR content (what a phone's camera reads)."""
        found = self.tickets.get(ticket) if ticket else next((t for t in self.tickets.values() if t.url == url), None)
        if found is None:
            raise NotFound("no such QR code (give \"ticket\" or \"qr_url\" as qrcode/create answered)")
        return found

    def issue_code(self, corpid: str, agentid: int, userid: str) -> LoginCode:
        code = LoginCode(
            code=secrets.token_urlsafe(32),
            corpid=corpid,
            agentid=agentid,
            userid=userid,
            expires_at=self.clock() + self.config.timing.login_code_ttl_s,
        )
        self.codes[code.code] = code
        return code

    def redeem_code(self, value: str, corpid: str) -> LoginCode:
        """Single use, 5 minutes, only for the corp it was issued for: else 40029."""
        code = self.codes.get(value)
        if code is None or code.used or code.corpid != corpid or self.clock() >= code.expires_at:
            raise ApiError(40029, "invalid code")
        code.used = True
        return code

    def next_msgid(self) -> int:
        self._msgid += 1 + secrets.randbelow(1000)
        return self._msgid

    # -- deliveries -------------------------------------------------------------------------

    def deliver(
        self,
        *,
        person: str,
        channel: Channel,
        app: str,
        to: str,
        text: str,
        status: DeliveryStatus = "delivered",
        **extra: Unpack[DeliveryExtras],
    ) -> Delivery:
        """Record what a phone shows (or would have shown, for dropped and duplicate sends)."""
        delivery = Delivery(
            seq=self.records.next_seq(),
            at=self.clock(),
            person=person,
            channel=channel,
            app=app,
            to=to,
            status=status,
            text=text,
            **extra,
        )
        self.records.deliveries.append(delivery)
        return delivery
