"""One form per component: the request's parameters → a :class:`SendJob`, or the first problem.

The checks run in BlueKing's order (field checks, then the form's own rule, then the nested
``data`` form), so a request with several problems gets the message BlueKing would give.
Identity and auth parameters (``bk_app_code``, ``bk_token``, ``bk_username``,
``bk_access_token``, ``bk_signature``…) are never read here: they are not message fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.errors import MalformedRequest
from sidecar.esb import params as p
from sidecar.esb.message import Message

Component = Literal["send_weixin", "send_msg", "send_mp_weixin", "send_qy_weixin"]
Kind = Literal["any", "mp", "wecom"]
MSG_TYPES = ("text", "textcard", "markdown")
EMPTY_RECEIVERS = "WeChat receiver [receiver, receiver__username] shall not be empty at the same time"
UNSUPPORTED_MSG_TYPE = "Unsupported type of msg type"


@dataclass(frozen=True)
class SendJob:
    """What to send to whom, as parsed; the account is chosen afterwards (see views)."""

    component: Component
    kind: Kind  # which account kinds the component may use
    receivers: tuple[str, ...] = ()  # WeChat ids (openids / WeCom userids)
    usernames: tuple[str, ...] = ()  # platform usernames, mapped through the binding table
    message: Message | None = None  # the structured BlueKing message
    content: str = ""  # send_qy_weixin: the text as given
    url: str = ""
    msgtype: str = "text"  # WeCom only: text | textcard | markdown
    btntxt: str = ""
    agent_id: str = ""  # wx_qy_agentid override
    corp_secret: str = ""  # wx_qy_corpsecret override
    account: str = ""  # our extension: a configured account name
    idempotency_key: str = ""

    def body_for_audit(self) -> dict[str, str]:
        body = self.message.as_dict() if self.message else {"content": self.content}
        return {**body, "url": self.url, "msgtype": self.msgtype}


def parse(component: Component, params: Mapping[str, Any], headers: Mapping[str, str]) -> SendJob:
    """The job for ``component``; raises MalformedRequest with BlueKing's message."""
    if component == "send_weixin":
        return _send_weixin(params, headers)
    if component == "send_msg":
        return _send_msg(params, headers)
    if component == "send_mp_weixin":
        return _send_mp_weixin(params, headers)
    return _send_qy_weixin(params, headers)


def _send_weixin(params: Mapping[str, Any], headers: Mapping[str, str]) -> SendJob:
    receivers = p.text_list(params, p.RECEIVER)
    usernames = p.text_list(params, p.RECEIVER_USERNAME)
    data = p.data_object(params)
    if not (receivers or usernames):
        raise MalformedRequest(EMPTY_RECEIVERS)
    message = p.message_from_data(data)
    return SendJob(
        "send_weixin",
        "any",
        receivers=tuple(receivers),
        usernames=() if receivers else tuple(usernames),
        message=message,
        **_extras(params, headers),
    )


def _send_msg(params: Mapping[str, Any], headers: Mapping[str, str]) -> SendJob:
    """``send_msg``: title→heading, content→message; only ``msg_type=weixin`` is served here."""
    msg_type = p.text(params, p.MSG_TYPE, required=True)
    usernames = p.text_list(params, p.RECIPIENTS, required=True)
    heading = p.text(params, p.TITLE, required=True)
    content = p.text(params, p.CONTENT, required=True)
    date, remark = p.text(params, p.DATE), p.text(params, p.REMARK)
    is_base64 = p.boolean(params, p.CONTENT_BASE64)
    if msg_type != "weixin":
        raise MalformedRequest(
            f"{UNSUPPORTED_MSG_TYPE} [msg_type={msg_type[:32]}]: this service sends msg_type=weixin only"
        )
    if is_base64:
        content = p.decode_base64(content, p.CONTENT)
    message = Message(heading, content, date, remark)
    return SendJob("send_msg", "any", usernames=tuple(usernames), message=message, **_extras(params, headers))


def _send_mp_weixin(params: Mapping[str, Any], headers: Mapping[str, str]) -> SendJob:
    receivers = p.text_list(params, p.RECEIVER, required=True)
    message = p.message_from_data(p.data_object(params))
    extras = _extras(params, headers)
    return SendJob("send_mp_weixin", "mp", receivers=tuple(receivers), message=message, **extras)


def _send_qy_weixin(params: Mapping[str, Any], headers: Mapping[str, str]) -> SendJob:
    receivers = p.text_list(params, p.RECEIVER, required=True)
    content = p.text(params, p.QY_CONTENT, required=True)
    extras = _extras(params, headers)
    if extras["msgtype"] == "textcard":
        raise p.WX_MSG_TYPE.error("textcard needs a title: use send_weixin with data.heading")
    return SendJob("send_qy_weixin", "wecom", receivers=tuple(receivers), content=content, **extras)


def _extras(params: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """The optional parameters every component shares (some are ours; see docs/BLUEKING-API.md)."""
    type_field = p.WX_MSG_TYPE if params.get(p.WX_MSG_TYPE.name) not in (None, "") else p.Field("msgtype", "msgtype")
    msgtype = p.choice(params, type_field, MSG_TYPES, "text")
    link = p.url(params)
    if msgtype == "textcard" and not link:
        raise p.URL.error(f"{p.REQUIRED[:-1]} when {type_field.name} is textcard.")
    return {
        "url": link,
        "msgtype": msgtype,
        "btntxt": p.text(params, p.BTNTXT),
        "agent_id": p.text(params, p.AGENT_ID),
        "corp_secret": p.text(params, p.CORP_SECRET),
        "account": p.text(params, p.ACCOUNT),
        "idempotency_key": p.idempotency_key(params, headers),
    }


__all__ = ["EMPTY_RECEIVERS", "UNSUPPORTED_MSG_TYPE", "Component", "SendJob", "parse"]
