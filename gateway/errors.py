"""Every failure the gateway can report, mapped to HTTP once, in ``gateway.app``'s middleware.

GatewayError
├── RequestRejected (4xx: the caller's fault; WeChat gets a short reason, nothing is spooled)
│   ├── UnknownAccount      404  no account of that name
│   ├── MalformedRequest    400  missing/ill-formed query parameter, bad XML, bad ciphertext
│   ├── HostileXml          400  DOCTYPE, entities or processing instructions
│   ├── BodyTooLarge        413  body over server.max_body_bytes
│   ├── BodyTimeout         408  body not complete within server.body_timeout_s
│   ├── ClientGone          400  the client closed the connection before its body was complete
│   ├── BadSignature        403  signature or msg_signature does not match
│   ├── StaleRequest        403  timestamp outside the account's max_clock_skew
│   ├── EncryptionRequired  403  plaintext callback to an account with require_encryption
│   └── WrongReceiver       403  decrypted trailing app id / corp id is not the configured one
└── ServiceUnavailable (5xx: our fault; WeChat will retry, which is what we want)
    └── SpoolUnavailable    503  the spool could not commit the event durably
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of the tree above; ``status`` is the HTTP status the edge answers with."""

    status = 500
    reason = "internal error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.reason)
        self.detail = detail or self.reason


class RequestRejected(GatewayError):
    status = 400
    reason = "request rejected"


class UnknownAccount(RequestRejected):
    status = 404
    reason = "unknown account"


class MalformedRequest(RequestRejected):
    status = 400
    reason = "malformed request"


class HostileXml(RequestRejected):
    status = 400
    reason = "XML with DOCTYPE, entities or processing instructions is refused"


class BodyTooLarge(RequestRejected):
    status = 413
    reason = "body too large"


class BodyTimeout(RequestRejected):
    status = 408
    reason = "request body not received in time"


class ClientGone(RequestRejected):
    """Nobody reads the answer; the 400 is for the log and the metrics, without a traceback."""

    status = 400
    reason = "client closed the connection before sending the whole body"


class BadSignature(RequestRejected):
    status = 403
    reason = "signature mismatch"


class StaleRequest(RequestRejected):
    status = 403
    reason = "timestamp outside the allowed clock skew"


class EncryptionRequired(RequestRejected):
    status = 403
    reason = "this account accepts encrypted callbacks only"


class WrongReceiver(RequestRejected):
    status = 403
    reason = "decrypted receiver id does not match the configured app id"


class ServiceUnavailable(GatewayError):
    status = 503
    reason = "service unavailable"


class SpoolUnavailable(ServiceUnavailable):
    reason = "spool unavailable"
