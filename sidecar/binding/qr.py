"""QR codes drawn here, from the ``url`` WeChat's ``qrcode/create`` answers with.

The seed guide's FAQ: users whose browsers cannot reach mp.weixin.qq.com saw no QR code,
because BlueKing showed WeChat's own image. The QR *content* is in WeChat's answer, so the
sidecar renders it locally (segno, SVG) and the browser loads nothing from WeChat. WeChat's
image link (``showqrcode?ticket=<url-encoded ticket>``) is still offered as a fallback.
"""

from __future__ import annotations

from urllib.parse import quote

import segno

SHOWQRCODE = "https://mp.weixin.qq.com/cgi-bin/showqrcode"
SCALE = 6
BORDER = 2


def svg_markup(content: str, *, title: str = "WeChat QR code") -> str:
    """Inline ``<svg>`` markup (no XML declaration, no external reference).

    Drawn at one unit per module with a ``viewBox`` and no fixed size, so the page's CSS sizes
    it and the browser scales it without blurring.
    """
    return str(
        segno.make(content, error="m").svg_inline(
            scale=1, border=BORDER, dark="#000", light="#fff", title=title, svgclass="qr", omitsize=True
        )
    )


def svg_data_uri(content: str) -> str:
    """The same QR as a ``data:image/svg+xml`` URL, for an ``<img src>`` (BlueKing's frontend)."""
    return str(segno.make(content, error="m").svg_data_uri(scale=SCALE, border=BORDER, dark="#000", light="#fff"))


def showqrcode_url(ticket: str) -> str:
    """WeChat's own image of the code; the ticket must be URL-encoded (it may hold ``+ / =``)."""
    return f"{SHOWQRCODE}?ticket={quote(ticket, safe='')}"


__all__ = ["SHOWQRCODE", "showqrcode_url", "svg_data_uri", "svg_markup"]
