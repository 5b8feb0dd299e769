"""What users read: BlueKing's own messages (kept byte for byte) and the binding page's texts.

The console endpoints and the passive replies speak Chinese, as BlueKing does; the standalone
page is Chinese or English. Failure reasons are stored and answered in Chinese (the BlueKing
contract) and translated for the English page through :data:`EN_REASONS`.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

# BlueKing's messages (bk-compat.md, "User binding").
NOT_ENABLED = "系统管理员未启用微信通知组件"
NO_NEED = "您已绑定微信，无需再绑定"
USER_ALREADY_BOUND = "已经绑定了微信，请解绑后再重新绑定！"
WX_ID_TAKEN = "该微信号已经被绑定过了"
QRCODE_FAILED = "后台获取公众号二维码失败，请联系系统管理员检查微信配置"
BIND_OK = "绑定成功"
BIND_OK_CLOSING = "绑定成功，3秒后将自动关闭页面"
BIND_FAILED = "绑定失败"
NOT_BOUND = "账号未绑定过微信号，无法解绑"
UNBIND_OK = "解绑成功"

# Ours, where BlueKing has none or crashes.
WELCOME = "欢迎关注！在蓝鲸“个人中心 → 绑定微信”扫码完成绑定后，即可在这里收到通知。"
SCENE_UNKNOWN = "二维码无效，请刷新绑定页面后重新扫码"
SCENE_EXPIRED = "二维码已过期，请刷新绑定页面后重新扫码"
SCENE_USED = "二维码已使用，请刷新绑定页面后重新扫码"
NOT_SIGNED_IN = "未登录或登录已过期，请重新打开绑定页面"
LOGIN_UNAVAILABLE = "暂时无法验证登录状态，请稍后重试"
ORIGIN_REJECTED = "请求来源校验失败，请在绑定页面上操作"
WRONG_KIND = "该账号不支持这种绑定方式"
STATE_INVALID = "登录状态无效，请回到绑定页面重新发起"
STATE_USED = "该登录链接已使用，请回到绑定页面重新发起"
STATE_EXPIRED = "登录已超时，请回到绑定页面重新发起"
USER_MISMATCH = "当前登录用户与发起绑定的用户不一致"
CODE_MISSING = "缺少企业微信登录凭证（code）"
CODE_INVALID = "企业微信登录凭证无效或已过期，请重新扫码"
NOT_MEMBER = "该企业微信账号不是本企业成员，无法绑定"
WECOM_FAILED = "调用企业微信接口失败，请稍后重试或联系系统管理员"
LINK_INVALID = "绑定链接无效、已使用或已过期，请重新获取"
ACCOUNT_UNKNOWN = "没有这个公众号或企业微信应用"
WX_ID_INVALID = "微信返回的账号标识格式无效，无法绑定，请联系系统管理员"

EN_REASONS: dict[str, str] = {
    NOT_ENABLED: "The administrator has not enabled WeChat notifications.",
    NO_NEED: "Your WeChat is already bound; there is nothing to do.",
    USER_ALREADY_BOUND: "You already have a WeChat bound; unbind it before binding another.",
    WX_ID_TAKEN: "This WeChat account is already bound to another user.",
    QRCODE_FAILED: "Could not get a QR code from WeChat; ask the administrator to check the WeChat settings.",
    BIND_OK: "Bound.",
    NOT_BOUND: "No WeChat is bound to this account, so there is nothing to unbind.",
    UNBIND_OK: "Unbound.",
    SCENE_UNKNOWN: "This QR code is not valid; reload the binding page and scan again.",
    SCENE_EXPIRED: "This QR code has expired; reload the binding page and scan again.",
    SCENE_USED: "This QR code was already used; reload the binding page and scan again.",
    NOT_SIGNED_IN: "You are not signed in, or your session expired; open the binding page again.",
    LOGIN_UNAVAILABLE: "Your sign-in cannot be checked right now; try again shortly.",
    ORIGIN_REJECTED: "The request did not come from the binding page.",
    WRONG_KIND: "This account does not support this way of binding.",
    STATE_INVALID: "The login state is not valid; start again from the binding page.",
    STATE_USED: "This login link was already used; start again from the binding page.",
    STATE_EXPIRED: "The login took too long; start again from the binding page.",
    USER_MISMATCH: "You are signed in as a different user than the one who started binding.",
    CODE_MISSING: "The WeCom login code is missing.",
    CODE_INVALID: "The WeCom login code is invalid or expired; scan again.",
    NOT_MEMBER: "This WeCom account is not a member of the company and cannot be bound.",
    WECOM_FAILED: "WeCom could not be reached; try again later or ask the administrator.",
    LINK_INVALID: "This binding link is invalid, used or expired; ask for a new one.",
    ACCOUNT_UNKNOWN: "There is no such WeChat account or WeCom app.",
    WX_ID_INVALID: "WeChat answered with an id that is not well-formed, so it cannot be bound; ask the administrator.",
}


def reason(message: str, lang: Lang) -> str:
    """A stored (Chinese) reason in the page's language."""
    return EN_REASONS.get(message, message) if lang == "en" else message


UI: dict[Lang, dict[str, str]] = {
    "zh": {
        "title": "绑定微信",
        "user": "用户",
        "account": "公众号 / 应用",
        "scan_mp": "请使用微信扫描二维码，关注公众号后即完成绑定。",
        "wechat_image": "二维码显示不出来？打开微信提供的二维码图片",
        "expires": "二维码有效期至",
        "expired": "二维码已过期。",
        "refresh": "刷新二维码",
        "wecom_hint": "点击下方按钮，用企业微信扫码登录即完成绑定。",
        "wecom_button": "使用企业微信登录绑定",
        "waiting": "等待扫码…",
        "success": "绑定成功",
        "success_hint": "以后的通知会发送到这个微信。",
        "bound": "已绑定微信",
        "bound_id": "绑定的微信号",
        "unbind": "解除绑定",
        "unbind_confirm": "确定要解除微信绑定吗？解除后将收不到微信通知。",
        "inactive": "你已取消关注，通知已暂停。用原来的微信重新扫码即可恢复；要换一个微信，请先解除绑定。",
        "failed": "绑定失败",
        "retry": "重新绑定",
        "close_hint": "如果页面没有自动关闭，请手动关闭，回到绑定页面。",
        "back": "回到绑定页面",
        "lang_other": "English",
        "sign_in_title": "需要登录",
        "sign_in_link": "登录蓝鲸",
    },
    "en": {
        "title": "Bind WeChat",
        "user": "User",
        "account": "Account",
        "scan_mp": "Scan the QR code with WeChat and follow the account to finish binding.",
        "wechat_image": "No QR code above? Open WeChat's own QR image",
        "expires": "QR code valid until",
        "expired": "The QR code has expired.",
        "refresh": "New QR code",
        "wecom_hint": "Press the button and scan with the WeCom app to finish binding.",
        "wecom_button": "Bind with WeCom login",
        "waiting": "Waiting for the scan…",
        "success": "Bound",
        "success_hint": "Notifications will now reach this WeChat.",
        "bound": "WeChat is bound",
        "bound_id": "Bound WeChat id",
        "unbind": "Unbind",
        "unbind_confirm": "Unbind your WeChat? You will stop receiving WeChat notifications.",
        "inactive": "You unfollowed, so notifications are paused. Scan again with the same WeChat to resume; "
        "to use another WeChat, unbind first.",
        "failed": "Binding failed",
        "retry": "Try again",
        "close_hint": "If this page does not close by itself, close it and return to the binding page.",
        "back": "Back to the binding page",
        "lang_other": "中文",
        "sign_in_title": "Sign-in required",
        "sign_in_link": "Sign in to BlueKing",
    },
}


def pick_lang(query_lang: str | None, accept_language: str | None) -> Lang:
    """``?lang=`` wins; else the first of zh/en in Accept-Language by q-value; else Chinese."""
    if query_lang in ("zh", "en"):
        return query_lang  # type: ignore[return-value]
    best: tuple[float, Lang] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("zh", "en"):
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if best is None or q > best[0]:
            best = (q, "zh" if primary == "zh" else "en")
    return best[1] if best else "zh"


__all__ = ["EN_REASONS", "UI", "Lang", "pick_lang", "reason"]
