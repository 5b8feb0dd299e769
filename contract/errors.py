"""Errors of the wire contract.

ContractError
├── MalformedPayload   a body that is not the JSON shape the contract defines
└── SignatureError     a request whose Standard Webhooks headers do not verify (answer 401)
"""


class ContractError(Exception):
    """A relay request or answer that breaks relay-contract.md; the message says how."""


class MalformedPayload(ContractError):
    """The body is not valid JSON of the expected shape."""


class SignatureError(ContractError):
    """Missing, malformed, stale, replayed or non-matching webhook signature headers."""
