"""The HTTP side of the BlueKing send components: authenticate, parse, map, send, answer, audit.

Every answer is BlueKing's envelope with HTTP 200 (sidecar.bk.envelope), whatever happened; nothing
raised here reaches the generic error middleware. Each authenticated request leaves one audit
record (caller, account, recipients, outcome, first WeChat errcode, msgids; the message itself
only with ``[audit] store_bodies = true``). Requests that fail authentication are logged, not
audited: anyone could otherwise fill the audit table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from common import logs
from sidecar.bk.callers import Caller
from sidecar.bk.envelope import CODE_FAILED, bk_response, read_params
from sidecar.config import AccountConfig, MpAccount
from sidecar.errors import AuthError, MalformedRequest, RequestError, SidecarError
from sidecar.esb import accounts, forms, recipients
from sidecar.esb.mp import MpSender, send_templates
from sidecar.esb.outcome import FAILED, Delivery, Verdict, judge, nobody, refused
from sidecar.esb.recipients import Resolution
from sidecar.esb.template import RecentSends
from sidecar.esb.wecom import WecomSender, content_part, send_app_message
from sidecar.keys import CALLERS, CLOCK, CONFIG, METRICS, STORE, TOKENS, WXAPI
from sidecar.store import AuditRecord

log = logging.getLogger(__name__)

RECENT = web.AppKey("esb_recent_sends", RecentSends)
Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class Attempt:
    """What became of one request, for the answer, the log line and the audit record."""

    caller: Caller
    verdict: Verdict
    job: forms.SendJob | None = None
    account: AccountConfig | None = None
    resolution: Resolution | None = None
    delivery: Delivery | None = None


def handler(component: forms.Component) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return await serve(request, component)

    handle.__name__ = component
    return handle


async def serve(request: web.Request, component: forms.Component) -> web.Response:
    try:
        params, body = await read_params(request)
        caller = request.app[CALLERS].authenticate(
            params, method=request.method, path=request.path, query=request.query, body=body, headers=request.headers
        )
    except MalformedRequest as exc:
        log.warning("send request unreadable", extra={"component": component, "reason": exc.detail})
        return _answer(refused(CODE_FAILED, exc.detail))
    except AuthError as exc:
        log.warning("caller refused", extra={"component": component, "error": type(exc).__name__, "reason": exc.detail})
        return _answer(refused(exc.bk_code, exc.detail))
    attempt = Attempt(caller, refused(CODE_FAILED, FAILED))
    try:
        attempt.job = forms.parse(component, params, request.headers)
        attempt.account = accounts.choose(request.app[CONFIG], attempt.job)
        await _send(request.app, attempt, attempt.job, attempt.account)
    except RequestError as exc:
        attempt.verdict = refused(CODE_FAILED, exc.detail)
    except SidecarError as exc:  # the store failed us; WeChat errors are per recipient, never raised here
        log.error("send failed", extra={"component": component, "error": type(exc).__name__, "reason": exc.detail})
        attempt.verdict = Verdict(False, CODE_FAILED, f"{FAILED}, {exc.detail}", None, "failed")
    except Exception:  # a bug: still BlueKing's envelope (callers expect HTTP 200), never a traceback
        log.exception("send crashed", extra={"component": component})
        attempt.verdict = Verdict(False, CODE_FAILED, f"{FAILED}, internal error", None, "failed")
    _log(component, attempt)
    await _audit(request.app, component, attempt)
    return _answer(attempt.verdict)


async def _send(app: web.Application, attempt: Attempt, job: forms.SendJob, account: AccountConfig) -> None:
    if job.usernames:
        resolution = await recipients.by_username(app[STORE].bindings, account.name, account.kind, job.usernames)
    else:
        resolution = recipients.direct(account.kind, job.receivers)
    attempt.resolution = resolution
    if not resolution.wx_ids:
        attempt.verdict = nobody(resolution)
        return
    if isinstance(account, MpAccount):
        if job.message is None:  # send_qy_weixin never reaches an MP account (forms.Kind)
            raise MalformedRequest(accounts.NOT_SUPPORTED.format(kind="qy", what="WeCom (wecom)"))
        sender = MpSender(
            app[TOKENS], app[WXAPI], app[METRICS], app[RECENT], app[CLOCK], app[CONFIG].wechat.send_concurrency
        )
        attempt.delivery = await send_templates(
            sender, account, resolution.wx_ids, job.message, url=job.url, idempotency_key=job.idempotency_key
        )
    else:
        part = content_part(job.msgtype, job.message, job.content, url=job.url, btntxt=job.btntxt)
        wecom = WecomSender(app[TOKENS], app[WXAPI], app[METRICS])
        attempt.delivery = await send_app_message(wecom, account, resolution.wx_ids, job.msgtype, part)
    attempt.verdict = judge(attempt.delivery, resolution)


def _answer(verdict: Verdict) -> web.Response:
    return bk_response(result=verdict.result, code=verdict.code, message=verdict.message, data=verdict.data)


def _log(component: str, attempt: Attempt) -> None:
    delivery = attempt.delivery
    extra = {
        "component": component,
        "app_code": attempt.caller.app_code,
        "account": attempt.account.name if attempt.account else "",
        "outcome": attempt.verdict.outcome,
        "code": attempt.verdict.code,
        "recipients": len(delivery.attempted) if delivery else 0,
        "delivered": len(delivery.delivered) if delivery else 0,
    }
    if attempt.verdict.outcome == "rejected":
        extra["reason"] = attempt.verdict.message
    log.info("wechat send", extra=extra)


async def _audit(app: web.Application, component: str, attempt: Attempt) -> None:
    """One record per authenticated request; a failing store is logged, never turned into a failed send."""
    job, delivery, resolution = attempt.job, attempt.delivery, attempt.resolution
    detail: dict[str, object] = {
        "component": component,
        "code": attempt.verdict.code,
        "message": attempt.verdict.message[:1000],
    }
    if job is not None and job.usernames:
        detail["usernames"] = list(job.usernames)
    if resolution is not None and resolution.by_username:
        detail["username_check"] = resolution.username_check()
    if delivery is not None:
        detail["channel"] = delivery.channel
        detail["failed"] = [{"receivers": list(f.receivers), "errcode": f.errcode} for f in delivery.failures]
    if job is not None and delivery is not None and delivery.channel == "wecom":
        detail["msgtype"] = job.msgtype
    store_bodies = app[CONFIG].audit.store_bodies
    record = AuditRecord(
        request_id=logs.request_id.get(),
        at=app[CLOCK](),
        app_code=attempt.caller.app_code,
        account=attempt.account.name if attempt.account else "",
        recipients=list(delivery.attempted) if delivery else list(job.receivers if job else ()),
        outcome=attempt.verdict.outcome,
        errcode=delivery.first_errcode() if delivery else None,
        msgid=",".join(delivery.msgids) if delivery and delivery.msgids else None,
        detail=detail,
        body=json.dumps(job.body_for_audit(), ensure_ascii=False) if store_bodies and job else None,
    )
    try:
        await app[STORE].audit.record(record)
    except SidecarError as exc:
        log.error("audit record not written", extra={"component": component, "reason": exc.detail})


__all__ = ["RECENT", "handler", "serve"]
