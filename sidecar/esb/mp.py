"""Sending MP template messages: one call per openid, a bounded number at a time.

Each call runs through the token manager with ``safe_to_repeat=True``: the body carries a
``client_msg_id`` (sidecar.esb.template), so a call retried after a timeout, a ``-1`` or a 45009
cannot deliver twice, and an invalid token (40001/40014/42001) is refreshed once and the call
repeated once. The body is the official one, keys in WeChat's documented order:
``{touser, template_id, url?, client_msg_id, data}``.

The token is fetched once before the fan-out, so wrong credentials cost one token call, not one
per openid. After a failure that is not about the recipient (WeChat unreachable after retries,
a wrong template id, the frequency limit…) the remaining openids are not attempted — every call
would meet the same failure — and are reported with it; a BlueKing retry re-sends safely.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.logs import short_id
from sidecar.config import MpAccount
from sidecar.errors import WeChatError
from sidecar.esb import template
from sidecar.esb.message import Message
from sidecar.esb.outcome import Delivery, Failure
from sidecar.metrics import SidecarMetrics
from sidecar.wechat.api import WeChatApi
from sidecar.wechat.tokens import TokenManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MpSender:
    """What a template send needs from the app, handed over explicitly."""

    tokens: TokenManager
    api: WeChatApi
    metrics: SidecarMetrics
    recent: template.RecentSends
    clock: Callable[[], float]
    concurrency: int


async def send_templates(
    sender: MpSender,
    account: MpAccount,
    openids: Sequence[str],
    message: Message,
    *,
    url: str = "",
    idempotency_key: str = "",
) -> Delivery:
    data, cuts = template.template_data(account, message, template.sent_at(sender.clock))
    template.log_cuts(account.name, cuts)
    fingerprint = template.content_fingerprint(account, url, message)
    salt = sender.recent.salt(fingerprint, idempotency_key)
    limit = asyncio.Semaphore(sender.concurrency)
    delivery = Delivery("template", tuple(openids))
    if not await _token_ready(sender, account, delivery):
        return delivery

    async def one(openid: str) -> None:
        body = _body(account, openid, url, data, template.client_msg_id(account, openid, url, message, salt))
        async with limit:
            if delivery.halted is not None:
                delivery.skip((openid,))
                sender.metrics.messages.labels(account.name, "template", "failed").inc()
                return
            await _send_one(sender, account, openid, body, delivery)

    await asyncio.gather(*(one(openid) for openid in openids))
    return delivery


async def _token_ready(sender: MpSender, account: MpAccount, delivery: Delivery) -> bool:
    """Fetch (or find) the token once; on failure every openid fails with that error."""
    try:
        await sender.tokens.get(account.name)
    except WeChatError as exc:
        delivery.fail(Failure(delivery.attempted, exc.errcode, exc.errmsg))
        sender.metrics.messages.labels(account.name, "template", "failed").inc(len(delivery.attempted))
        log.error("no access token for template sends", extra={"account": account.name, "reason": exc.detail})
        return False
    return True


def _body(account: MpAccount, openid: str, url: str, data: dict[str, dict[str, str]], msg_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"touser": openid, "template_id": account.template_id}
    if url:
        body["url"] = url
    body["client_msg_id"] = msg_id
    body["data"] = data
    return body


async def _send_one(
    sender: MpSender, account: MpAccount, openid: str, body: dict[str, Any], delivery: Delivery
) -> None:
    async def call(token: str) -> dict[str, Any]:
        return await sender.api.template_send(token, body)

    try:
        answer = await sender.tokens.run(account.name, call, safe_to_repeat=True)
    except WeChatError as exc:
        delivery.fail(Failure((openid,), exc.errcode, exc.errmsg))
        sender.metrics.messages.labels(account.name, "template", "failed").inc()
        log.warning(
            "template message not sent",
            extra={"account": account.name, "openid": short_id(openid), "errcode": exc.errcode, "reason": exc.detail},
        )
        return
    delivery.delivered.append(openid)
    if answer.get("msgid") is not None:
        delivery.msgids.append(str(answer["msgid"]))
    sender.metrics.messages.labels(account.name, "template", "ok").inc()


__all__ = ["MpSender", "send_templates"]
