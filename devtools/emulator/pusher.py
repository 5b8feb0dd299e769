"""Callbacks as WeChat's servers deliver them: signed, encrypted per mode, retried, judged.

Each push is built once — query string, timestamp, nonce and body — and sent up to
``push_attempts`` times (4 by default: the first delivery and three retries), each attempt given
``push_timeout_s`` (5 s) before the connection is dropped. A 200 ends the push: its body is judged
(``replies.judge``) and what the user sees is recorded on their phone. A timeout, a connection
failure or another status is retried with the identical request. Server-URL verification (the GET
with ``echostr``) is here too, since it is the same machinery with a different check.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from common.logs import short_id
from devtools.emulator import crypto
from devtools.emulator.config import MpApp, WecomAgent, WecomCorp
from devtools.emulator.errors import Conflict
from devtools.emulator.records import SERVICE_ERROR, Attempt, Channel, Push
from devtools.emulator.replies import BadReply, Expectation, judge
from devtools.emulator.state import World
from devtools.emulator.xmlmsg import build_xml

log = logging.getLogger("devtools.emulator.pusher")
HEADERS = {"Content-Type": "text/xml", "User-Agent": "Mozilla/4.0"}
_SILENT_EVENTS = frozenset({"unsubscribe", "TEMPLATESENDJOBFINISH"})


@dataclass(frozen=True)
class Outgoing:
    """One push's request, fixed before the first attempt so every retry is byte-identical."""

    url: str
    body: bytes
    expect: Expectation
    user_facing: bool


def _nonce() -> str:
    return str(secrets.randbelow(9 * 10**9) + 10**9)


def _user_facing(fields: dict[str, Any]) -> bool:
    """Whether the user waits for an answer: not after unsubscribing, not for system events."""
    return not (fields.get("MsgType") == "event" and fields.get("Event") in _SILENT_EVENTS)


class Pusher:
    def __init__(self, world: World, session: aiohttp.ClientSession, monotonic: Callable[[], float] = time.monotonic):
        self._world = world
        self._session = session
        self._monotonic = monotonic

    def _new_push(self, **fields: Any) -> Push:
        push = Push(id=self._world.records.next_seq(), **fields)
        self._world.records.add_push(push)
        return push

    def mp(self, app: MpApp, person: str, fields: dict[str, Any]) -> tuple[Push, Outgoing]:
        """Build the callback for an MP event or message in the app's mode."""
        if not app.callback_url:
            raise Conflict(f"MP app {app.appid} has no callback_url")
        openid = str(fields["FromUserName"])
        timestamp, nonce = str(int(self._world.clock())), _nonce()
        plain = build_xml(fields)
        query = {"signature": crypto.signature(app.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        query["openid"] = openid
        body = plain
        if app.mode != "plain":
            encrypted = crypto.encrypt(app.encoding_aes_key, app.appid, plain.encode("utf-8"))
            query["encrypt_type"] = "aes"
            query["msg_signature"] = crypto.signature(app.token, timestamp, nonce, encrypted)
            envelope = fields if app.mode == "compat" else {"ToUserName": app.original_id}
            body = build_xml({**envelope, "Encrypt": encrypted})
        expect = Expectation(
            token=app.token,
            encoding_aes_key=app.encoding_aes_key,
            receive_id=app.appid,
            allow_plain=app.mode != "safe",
            allow_encrypted=app.mode != "plain",
            to_user=openid,
            from_user=app.original_id,
        )
        url = str(URL(app.callback_url).update_query(query))
        push = self._new_push(
            kind="mp", app=app.appid, agentid=None, person=person, to_user=openid, message=_strs(fields), url=url
        )
        return push, Outgoing(url, body.encode("utf-8"), expect, _user_facing(fields))

    def wecom(self, corp: WecomCorp, agent: WecomAgent, person: str, fields: dict[str, Any]) -> tuple[Push, Outgoing]:
        """Build the callback for a WeCom event or message: always encrypted, msg_signature only."""
        if not agent.callback_url:
            raise Conflict(f"WeCom agent {corp.corpid}/{agent.agentid} has no callback_url")
        userid = str(fields["FromUserName"])
        timestamp, nonce = str(int(self._world.clock())), _nonce()
        encrypted = crypto.encrypt(agent.encoding_aes_key, corp.corpid, build_xml(fields).encode("utf-8"))
        query = {
            "msg_signature": crypto.signature(agent.token, timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = build_xml({"ToUserName": corp.corpid, "Encrypt": encrypted, "AgentID": str(agent.agentid)})
        expect = Expectation(
            token=agent.token,
            encoding_aes_key=agent.encoding_aes_key,
            receive_id=corp.corpid,
            allow_plain=False,
            allow_encrypted=True,
            to_user=userid,
            from_user=corp.corpid,
        )
        url = str(URL(agent.callback_url).update_query(query))
        push = self._new_push(
            kind="wecom",
            app=corp.corpid,
            agentid=agent.agentid,
            person=person,
            to_user=userid,
            message=_strs(fields),
            url=url,
        )
        return push, Outgoing(url, body.encode("utf-8"), expect, _user_facing(fields))

    async def send(self, push: Push, out: Outgoing) -> Push:
        """Deliver with retries, judge the answer, record what the user sees; returns the push."""
        timing = self._world.config.timing
        started = self._monotonic()
        for number in range(1, timing.push_attempts + 1):
            if number > 1 and timing.push_retry_delay_s:
                await asyncio.sleep(timing.push_retry_delay_s)
            attempt = Attempt(number=number, elapsed_s=0.0)
            push.attempts.append(attempt)
            status, body = await self._attempt(out, timing.push_timeout_s, attempt)
            attempt.elapsed_s = round(self._monotonic() - started, 3)
            if status == 200:
                self._conclude(push, out, body)
                return push
        push.status = "failed"
        push.problem = f"no usable answer after {timing.push_attempts} attempts"
        self._show_failure(push, out)
        return push

    async def _attempt(self, out: Outgoing, timeout_s: float, attempt: Attempt) -> tuple[int | None, bytes]:
        try:
            async with self._session.post(
                URL(out.url, encoded=True),
                data=out.body,
                headers=HEADERS,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                attempt.http_status = resp.status
                attempt.body = body[:2000].decode("utf-8", "replace")
                return resp.status, body
        except TimeoutError:
            attempt.error = f"no answer within {timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"
        return None, b""

    def _conclude(self, push: Push, out: Outgoing, body: bytes) -> None:
        try:
            push.reply, shown = judge(body, out.expect)
        except BadReply as exc:
            push.status = "bad_reply"
            push.problem = str(exc)
            log.info("push %s: bad reply: %s", push.id, exc, extra={"user": short_id(push.to_user)})
            self._show_failure(push, out)
            return
        push.status = "acknowledged" if shown is None else "replied"
        if shown is not None and out.user_facing:
            push.shown = shown
            channel: Channel = "mp.reply" if push.kind == "mp" else "wecom.reply"
            self._world.deliver(
                person=push.person, channel=channel, app=push.app, to=push.to_user, text=shown, agentid=push.agentid
            )

    def _show_failure(self, push: Push, out: Outgoing) -> None:
        """WeChat tells an MP user the account is unavailable; WeCom shows nothing."""
        if push.kind == "mp" and out.user_facing:
            push.shown = SERVICE_ERROR
            self._world.deliver(
                person=push.person, channel="mp.service_error", app=push.app, to=push.to_user, text=SERVICE_ERROR
            )

    async def verify_mp(self, app: MpApp) -> dict[str, Any]:
        """The server-URL check the MP console runs: the answer must equal echostr exactly."""
        timestamp, nonce, echostr = str(int(self._world.clock())), _nonce(), str(secrets.randbits(63))
        query = {"signature": crypto.signature(app.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        query["echostr"] = echostr
        return await self._verify(app.callback_url, query, echostr)

    async def verify_wecom(self, corp: WecomCorp, agent: WecomAgent) -> dict[str, Any]:
        """WeCom's check: echostr is encrypted; the answer must be the decrypted plaintext."""
        timestamp, nonce, plain = str(int(self._world.clock())), _nonce(), str(secrets.randbits(63))
        echostr = crypto.encrypt(agent.encoding_aes_key, corp.corpid, plain.encode("ascii"))
        query = {
            "msg_signature": crypto.signature(agent.token, timestamp, nonce, echostr),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        return await self._verify(agent.callback_url, query, plain)

    async def _verify(self, callback_url: str, query: dict[str, str], expected: str) -> dict[str, Any]:
        if not callback_url:
            raise Conflict("no callback_url configured")
        url = str(URL(callback_url).update_query(query))
        result: dict[str, Any] = {"url": url, "expected": expected, "ok": False, "http_status": None, "body": ""}
        timeout = aiohttp.ClientTimeout(total=self._world.config.timing.verify_timeout_s)
        try:
            async with self._session.get(URL(url, encoded=True), timeout=timeout, allow_redirects=False) as resp:
                body = await resp.read()
                result["http_status"] = resp.status
                result["body"] = body[:2000].decode("utf-8", "replace")
        except TimeoutError:
            result["problem"] = "no answer in time"
            return result
        except (aiohttp.ClientError, OSError) as exc:
            result["problem"] = f"{type(exc).__name__}: {exc}"
            return result
        result["ok"] = result["http_status"] == 200 and body == expected.encode("ascii")
        if not result["ok"]:
            result["problem"] = "Token验证失败: the answer is not the echostr (exactly, no quotes or newline)"
        return result


def _strs(fields: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in fields.items()}
