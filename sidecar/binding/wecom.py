"""WeCom web login (wechat-protocol.md §3): the URL the user scans with the WeCom app.

Two styles, ``[binding] wecom_login``: ``qrconnect`` (the classic ``/wwopen/sso/qrConnect``
page, what BlueKing uses) and ``wwlogin`` (the newer ``/wwlogin/sso/login`` with
``login_type=CorpApp``). WeCom sends the browser back to ``redirect_uri`` with ``code`` and our
``state``; ``state`` may hold only ``[A-Za-z0-9]`` and at most 128 bytes, hence hex.
"""

from __future__ import annotations

from urllib.parse import urlencode

from sidecar.config import WecomLogin

QRCONNECT = "https://open.work.weixin.qq.com/wwopen/sso/qrConnect"
WWLOGIN = "https://login.work.weixin.qq.com/wwlogin/sso/login"
CALLBACK_PATH = "/console/user_center/weixin/qy/login_callback/"


def login_url(style: WecomLogin, *, corp_id: str, agent_id: int, redirect_uri: str, state: str) -> str:
    if style == "wwlogin":
        params = {
            "login_type": "CorpApp",
            "appid": corp_id,
            "agentid": str(agent_id),
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return f"{WWLOGIN}?{urlencode(params)}"
    params = {"appid": corp_id, "agentid": str(agent_id), "redirect_uri": redirect_uri, "state": state}
    return f"{QRCONNECT}?{urlencode(params)}"


def redirect_uri(public_url: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH


__all__ = ["CALLBACK_PATH", "QRCONNECT", "WWLOGIN", "login_url", "redirect_uri"]
