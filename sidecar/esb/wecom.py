"""Sending WeCom app messages: BlueKing's text layout, or a textcard or markdown on request.

* ``text`` (default, BlueKing's layout): lines heading, message, ``Date: <date>`` when a date
  was given, remark when given. ``send_qy_weixin`` sends its ``content`` as it is.
* ``textcard``: title = heading (≤128 bytes), description = message, ``Date: <date>`` and
  remark on their own lines (≤512 bytes), url = the ``url`` parameter (required), btntxt = the
  ``btntxt`` parameter (≤4 characters; WeCom's default "详情" when absent).
* ``markdown``: ``**heading**``, then the message (itself markdown), then ``> Date: <date>`` and
  ``> <remark>`` (≤2048 bytes).
Over-long parts are cut on a UTF-8 character boundary and the cut is logged (WeCom would cut or
refuse them). Recipients go in batches of at most 1000 (``touser`` = ``id1|id2``), each call
with ``enable_duplicate_check`` on for 10 minutes, so a call retried after a timeout is dropped
by WeCom instead of delivered twice — which is what lets the token manager retry it.
``invaliduser`` and ``unlicenseduser`` in an answer, and 81013 (all recipients invalid), are
failures for those recipients. As for template sends, the token is fetched once up front, and
after a failure that is not about the recipients the remaining batches are not attempted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.config import WecomAccount
from sidecar.errors import WeChatError
from sidecar.esb.message import Message
from sidecar.esb.outcome import Delivery, Failure
from sidecar.metrics import SidecarMetrics
from sidecar.wechat.api import WeChatApi
from sidecar.wechat.tokens import TokenManager

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
DUPLICATE_CHECK_INTERVAL_S = 600
TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 2048
TITLE_MAX_BYTES = 128
DESCRIPTION_MAX_BYTES = 512
BTNTXT_MAX_CHARS = 4


@dataclass(frozen=True)
class WecomSender:
    tokens: TokenManager
    api: WeChatApi
    metrics: SidecarMetrics


def fit_bytes(value: str, limit: int, *, part: str) -> str:
    """``value`` cut to ``limit`` UTF-8 bytes without splitting a character; logs a cut."""
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value
    cut = raw[:limit].decode("utf-8", "ignore")
    log.info("wecom message part truncated", extra={"part": part, "bytes": len(raw), "kept": len(cut.encode())})
    return cut


def text_layout(message: Message) -> str:
    """BlueKing's ``get_qy_msg_content``."""
    lines = [message.heading, message.message]
    if message.date:
        lines.append(f"Date: {message.date}")
    if message.remark:
        lines.append(message.remark)
    return "\n".join(lines)


def content_part(msgtype: str, message: Message | None, raw: str, *, url: str, btntxt: str) -> dict[str, Any]:
    """The ``{msgtype: {...}}`` member of the send body."""
    if msgtype == "textcard" and message is not None:
        details = [message.message] + ([f"Date: {message.date}"] if message.date else []) + [message.remark]
        card = {
            "title": fit_bytes(message.heading, TITLE_MAX_BYTES, part="textcard.title"),
            "description": fit_bytes("\n".join(d for d in details if d), DESCRIPTION_MAX_BYTES, part="description"),
            "url": url,
        }
        if btntxt:
            card["btntxt"] = btntxt[:BTNTXT_MAX_CHARS]
        return {"textcard": card}
    if msgtype == "markdown":
        content = raw if message is None else _markdown(message)
        return {"markdown": {"content": fit_bytes(content, MARKDOWN_MAX_BYTES, part="markdown.content")}}
    content = raw if message is None else text_layout(message)
    return {"text": {"content": fit_bytes(content, TEXT_MAX_BYTES, part="text.content")}}


def _markdown(message: Message) -> str:
    lines = [f"**{message.heading}**", message.message]
    if message.date:
        lines.append(f"> Date: {message.date}")
    if message.remark:
        lines.append(f"> {message.remark}")
    return "\n".join(lines)


async def send_app_message(
    sender: WecomSender, account: WecomAccount, userids: Sequence[str], msgtype: str, part: dict[str, Any]
) -> Delivery:
    delivery = Delivery("wecom", tuple(userids))
    try:
        await sender.tokens.get(account.name)
    except WeChatError as exc:
        delivery.fail(Failure(delivery.attempted, exc.errcode, exc.errmsg))
        _count(sender, account, "failed", len(userids))
        log.error("no access token for wecom sends", extra={"account": account.name, "reason": exc.detail})
        return delivery
    for start in range(0, len(userids), BATCH_SIZE):
        batch = tuple(userids[start : start + BATCH_SIZE])
        if delivery.halted is not None:
            delivery.skip(batch)
            _count(sender, account, "failed", len(batch))
            continue
        body = {
            "touser": "|".join(batch),
            "msgtype": msgtype,
            "agentid": account.agent_id,
            **part,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL_S,
        }
        await _send_batch(sender, account, batch, body, delivery)
    return delivery


async def _send_batch(
    sender: WecomSender, account: WecomAccount, batch: tuple[str, ...], body: dict[str, Any], delivery: Delivery
) -> None:
    async def call(token: str) -> dict[str, Any]:
        return await sender.api.wecom_message_send(token, body)

    try:
        answer = await sender.tokens.run(account.name, call, safe_to_repeat=True)
    except WeChatError as exc:
        label = "invalid user" if exc.errcode == 81013 else ""
        delivery.fail(Failure(batch, exc.errcode, exc.errmsg, label))
        _count(sender, account, "failed", len(batch))
        log.warning(
            "wecom message not sent",
            extra={"account": account.name, "recipients": len(batch), "errcode": exc.errcode, "reason": exc.detail},
        )
        return
    refused = _refused(answer, batch, delivery)
    delivered = [u for u in batch if u.lower() not in refused]
    delivery.delivered.extend(delivered)
    if answer.get("msgid"):
        delivery.msgids.append(str(answer["msgid"]))
    _count(sender, account, "ok", len(delivered))
    _count(sender, account, "failed", len(batch) - len(delivered))


def _refused(answer: dict[str, Any], batch: tuple[str, ...], delivery: Delivery) -> set[str]:
    """Record ``invaliduser``/``unlicenseduser`` as failures; the refused ids, lowercased."""
    refused: set[str] = set()
    for name, label in (("invaliduser", "invalid user"), ("unlicenseduser", "unlicensed user")):
        value = answer.get(name)
        ids = [u for u in value.split("|") if u] if isinstance(value, str) else []
        if ids:
            delivery.fail(Failure(tuple(ids), 0, "", label))
            refused.update(u.lower() for u in ids)
    return refused


def _count(sender: WecomSender, account: WecomAccount, outcome: str, n: int) -> None:
    if n:
        sender.metrics.messages.labels(account.name, "wecom", outcome).inc(n)


__all__ = ["BATCH_SIZE", "WecomSender", "content_part", "fit_bytes", "send_app_message", "text_layout"]
