"""Checks on a callback's query string: required parameters, signatures, freshness.

Kept apart from the handlers so each rule is one small function with one error.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.errors import MalformedRequest
from gateway.wechat.crypto import verify_signature

__all__ = ["is_fresh", "param", "timestamp_param", "verify_msg_signature", "verify_plain_signature"]

MAX_PARAM_CHARS = 4096  # an echostr is the longest parameter; WeChat's are ~100 characters
MAX_TIMESTAMP_DIGITS = 12


def param(query: Mapping[str, str], name: str) -> str:
    """A required, non-empty query parameter of bounded length."""
    value = query.get(name, "")
    if not value:
        raise MalformedRequest(f"missing query parameter {name}")
    if len(value) > MAX_PARAM_CHARS:
        raise MalformedRequest(f"query parameter {name} too long")
    return value


def timestamp_param(query: Mapping[str, str]) -> str:
    """The ``timestamp`` parameter, which must be unix seconds (it is signed as a string)."""
    value = param(query, "timestamp")
    if not value.isascii() or not value.isdigit() or len(value) > MAX_TIMESTAMP_DIGITS:
        raise MalformedRequest("query parameter timestamp is not unix seconds")
    return value


def verify_plain_signature(query: Mapping[str, str], token: str) -> None:
    """MP ``signature``: sha1 over token, timestamp and nonce. It does not cover the body."""
    verify_signature(param(query, "signature"), token, timestamp_param(query), param(query, "nonce"))


def verify_msg_signature(query: Mapping[str, str], token: str, encrypted: str) -> None:
    """``msg_signature``: sha1 over token, timestamp, nonce and the Encrypt value (or echostr).

    Never ``signature``: checking that one in an encrypted mode is the classic bug, since it
    leaves the ciphertext unauthenticated.
    """
    verify_signature(
        param(query, "msg_signature"),
        token,
        timestamp_param(query),
        param(query, "nonce"),
        encrypted,
        name="msg_signature",
    )


def is_fresh(timestamp: str, now: float, max_skew_s: int) -> bool:
    """Whether ``timestamp`` lies within ``max_skew_s`` of ``now``; a skew of 0 turns the check off."""
    return max_skew_s == 0 or abs(now - int(timestamp)) <= max_skew_s
