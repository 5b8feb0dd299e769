"""WeChat's JSON answers, byte for byte where it matters to clients."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

CONTENT_TYPE = "application/json; encoding=utf-8"


def wechat_json(data: dict[str, Any]) -> web.Response:
    """UTF-8 JSON (not \\u escapes) with the Content-Type api.weixin.qq.com sends."""
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
