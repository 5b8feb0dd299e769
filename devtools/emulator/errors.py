"""Failures the emulator reports, mapped to HTTP once, in ``devtools.emulator.app``'s middleware.

EmulatorError
├── ApiError        HTTP 200 ``{"errcode", "errmsg"}``: what WeChat answers a bad API call with
├── AdminError      HTTP 4xx ``{"error"}``: a bad request to the ``/_emu`` admin API
│   ├── NotFound    404  unknown user, app, ticket, push or fault
│   ├── Conflict    409  the simulated user cannot do that now (already follows, not a follower)
│   └── Gone        410  the QR code or login request has expired
├── CryptoError     a ciphertext or signature the emulator's own WeChat crypto refuses
└── ConfigError     (re-exported from common.config) the emulator's configuration is unusable
"""

from __future__ import annotations

import secrets

from common.config import ConfigError

__all__ = ["AdminError", "ApiError", "ConfigError", "Conflict", "CryptoError", "EmulatorError", "Gone", "NotFound"]


class EmulatorError(Exception):
    """Base of the tree above."""


class ApiError(EmulatorError):
    """A WeChat API error: WeChat answers these with HTTP 200 and a JSON errcode.

    Real errmsgs end with `` rid: <request id>``; the emulator appends one too, so clients that
    compare errmsg strings instead of errcodes fail here as they would against WeChat.
    """

    def __init__(self, errcode: int, errmsg: str, **extra: object) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.extra = extra

    def body(self) -> dict[str, object]:
        rid = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"
        return {"errcode": self.errcode, "errmsg": f"{self.errmsg} rid: {rid}", **self.extra}


class AdminError(EmulatorError):
    """A bad admin API request; ``status`` is the HTTP status it is answered with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(AdminError):
    status = 404


class Conflict(AdminError):
    status = 409


class Gone(AdminError):
    status = 410


class CryptoError(EmulatorError):
    """A WeChat ciphertext, padding, receive id or signature that does not check out."""
