"""Failures of the binding feature, all under :class:`sidecar.errors.SidecarError`.

BindingError (``message`` is what the user reads, one of ``sidecar.binding.texts``)
├── BindingDisabled   200  [binding] enabled = false, or the account cannot bind this way
├── NotSignedIn       401  no identity: no valid session cookie, bk_token or trusted header
├── LoginUnavailable  503  the BlueKing login endpoint did not answer
├── OriginRejected    403  a state-changing POST whose Origin/Referer is not ours (CSRF)
└── BindingRefused    200  BlueKing's business refusals: already bound, id taken, QR failed…

The console edge turns every one of them into BlueKing's ``{"result": false, "message": …}``
with the status above (BlueKing answers its own refusals with HTTP 200); pages render them.
"""

from __future__ import annotations

from sidecar.binding import texts
from sidecar.errors import SidecarError


class BindingError(SidecarError):
    status = 400
    reason = "binding failed"
    default_message = texts.BIND_FAILED

    def __init__(self, detail: str = "", *, message: str | None = None) -> None:
        super().__init__(detail)
        self.message = message or self.default_message


class BindingDisabled(BindingError):
    status = 200
    reason = "binding disabled"
    default_message = texts.NOT_ENABLED


class NotSignedIn(BindingError):
    status = 401
    reason = "not signed in"
    default_message = texts.NOT_SIGNED_IN


class LoginUnavailable(BindingError):
    status = 503
    reason = "login service unavailable"
    default_message = texts.LOGIN_UNAVAILABLE


class OriginRejected(BindingError):
    status = 403
    reason = "cross-site request refused"
    default_message = texts.ORIGIN_REJECTED


class BindingRefused(BindingError):
    status = 200
    reason = "binding refused"


__all__ = ["BindingDisabled", "BindingError", "BindingRefused", "LoginUnavailable", "NotSignedIn", "OriginRejected"]
