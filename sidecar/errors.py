"""Every failure the sidecar can report; each kind is one class, mapped to HTTP once at the edge.

SidecarError
├── RequestError (4xx: the caller's fault)
│   ├── MalformedRequest     400  unparsable body, missing or ill-formed parameter
│   │   └── InvalidWxId      400  not the shape of an MP openid / WeCom userid (@all, separators…)
│   ├── NotFound             404  no such account, route or record
│   ├── BodyTimeout          408  body not complete within server.body_timeout_s
│   ├── ClientGone           400  the client closed the connection before its body was complete
│   └── RelayAuthError       401  a relay request whose webhook signature does not verify
├── AuthError (401/403: an intranet caller of our API; ``bk_code`` 1306401–1306406 for the envelope)
│   ├── MissingCredentials   no app code, or no secret and no signature
│   ├── UnknownApp           app code not among [[clients]]
│   ├── BadAppSecret         app secret does not match
│   ├── BadSignature         bk_signature malformed or not matching
│   ├── StaleSignature       bk_timestamp outside the 300 s window, or bk_nonce replayed
│   └── PermissionDenied     authenticated, but not allowed this call (e.g. may_get_token)
├── WeChatError(errcode, errmsg)  a WeChat API call failed (never carries a token or secret)
│   ├── TokenInvalid         40001 40014 42001: fetch a fresh token, retry the call once
│   ├── Retryable            -1 45009 and network errors: back off, retry if safe to repeat
│   │   └── WeChatUnavailable  no answer: timeout, connection error, non-JSON or HTTP 5xx
│   ├── CredentialRejected   the token fetch itself failed (wrong secret, IP not whitelisted…)
│   ├── QuotaExhausted       48006 and other daily quotas: retrying today will not help
│   ├── UserNotSubscribed    43004 the openid unfollowed the account
│   ├── InvalidRecipient     40003 invalid openid; WeCom 81013 every recipient invalid
│   └── InvalidCode          40029 an OAuth/login code that is unknown, used or expired
├── PullError             502  the gateway's pull listener failed a lease or an ack (we back off)
├── BindingConflict (409: what was asked contradicts a binding already stored; retrying will not help)
│   ├── UserAlreadyBound     the user already has a WeChat id on this account
│   └── WxIdTaken            the WeChat id is bound to another user of this account
└── StoreError (503: the store could not do its job; the caller may retry)
    ├── StoreUnavailable     the database is locked, gone or failing
    └── NestedTransaction    a store call made while the same task holds a transaction
"""

from __future__ import annotations


class SidecarError(Exception):
    """Base of the tree above; ``status`` is the HTTP status a generic edge answers with."""

    status = 500
    reason = "internal error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail or self.reason


class RequestError(SidecarError):
    status = 400
    reason = "bad request"


class MalformedRequest(RequestError):
    status = 400
    reason = "malformed request"


class InvalidWxId(MalformedRequest):
    """A WeChat id that its kind cannot have (sidecar.wechat.ids): refused wherever it arrives."""

    reason = "not a WeChat id"


class NotFound(RequestError):
    status = 404
    reason = "not found"


class BodyTimeout(RequestError):
    status = 408
    reason = "request body not received in time"


class ClientGone(RequestError):
    """Nobody reads the answer; the 400 is for the log and the metrics, without a traceback."""

    status = 400
    reason = "client closed the connection before sending the whole body"


class RelayAuthError(RequestError):
    status = 401
    reason = "relay signature rejected"


class AuthError(SidecarError):
    """A caller of our API failed authentication; ``bk_code`` is its BlueKing envelope code."""

    status = 401
    reason = "authentication failed"
    bk_code = 1306401


class MissingCredentials(AuthError):
    reason = "app code and app secret (or signature) are required"
    bk_code = 1306401


class UnknownApp(AuthError):
    reason = "unknown app code"
    bk_code = 1306402


class BadAppSecret(AuthError):
    reason = "app secret does not match"
    bk_code = 1306403


class BadSignature(AuthError):
    reason = "signature does not match"
    bk_code = 1306404


class StaleSignature(AuthError):
    reason = "signature timestamp outside the window or nonce reused"
    bk_code = 1306405


class PermissionDenied(AuthError):
    status = 403
    reason = "the app is not allowed to make this call"
    bk_code = 1306406


class WeChatError(SidecarError):
    """A WeChat API answered with a non-zero errcode, or could not be reached.

    ``errcode`` is None when WeChat gave no errcode (network error). ``api`` names the call
    (e.g. ``template_send``), never its URL, which would carry the access token.
    """

    status = 502
    reason = "WeChat API error"

    def __init__(self, errcode: int | None, errmsg: str, *, api: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api
        where = f"{api}: " if api else ""
        code = "network" if errcode is None else str(errcode)
        super().__init__(f"{where}WeChat error {code}: {errmsg}")


class TokenInvalid(WeChatError):
    pass


class Retryable(WeChatError):
    pass


class WeChatUnavailable(Retryable):
    status = 504


class CredentialRejected(WeChatError):
    pass


class QuotaExhausted(WeChatError):
    pass


class UserNotSubscribed(WeChatError):
    pass


class InvalidRecipient(WeChatError):
    pass


class InvalidCode(WeChatError):
    pass


TOKEN_INVALID_CODES = frozenset({40001, 40014, 42001})
RETRYABLE_CODES = frozenset({-1, 45009})
QUOTA_CODES = frozenset({48006, 45047, 45011})
# Codes of a token fetch that mean "the credentials are wrong" (40001 means a bad secret there).
CREDENTIAL_CODES = frozenset({40001, 40002, 40013, 40125, 40164, 41002, 41004, 40091, 61004})

_BY_CODE: dict[int, type[WeChatError]] = {
    **dict.fromkeys(TOKEN_INVALID_CODES, TokenInvalid),
    **dict.fromkeys(RETRYABLE_CODES, Retryable),
    **dict.fromkeys(QUOTA_CODES, QuotaExhausted),
    43004: UserNotSubscribed,
    40003: InvalidRecipient,
    81013: InvalidRecipient,
    40029: InvalidCode,
}


def wechat_error(errcode: int, errmsg: str, *, api: str = "", token_fetch: bool = False) -> WeChatError:
    """The WeChatError subclass for an errcode; a token fetch's credential codes are not retried."""
    if token_fetch and errcode in CREDENTIAL_CODES:
        return CredentialRejected(errcode, errmsg, api=api)
    return _BY_CODE.get(errcode, WeChatError)(errcode, errmsg, api=api)


class PullError(SidecarError):
    status = 502
    reason = "relay pull failed"


class StoreError(SidecarError):
    status = 503
    reason = "store error"


class StoreUnavailable(StoreError):
    reason = "store unavailable"


class BindingConflict(SidecarError):
    """A conflict with a stored binding: the store did its job, the answer is no (never a 503)."""

    status = 409
    reason = "binding conflict"


class UserAlreadyBound(BindingConflict):
    reason = "the user is already bound to a WeChat id"


class WxIdTaken(BindingConflict):
    reason = "the WeChat id is already bound to another user"


class NestedTransaction(StoreError):
    status = 500
    reason = "store used outside the transaction this task holds"
