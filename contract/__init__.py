"""The wire between the gateway (DMZ) and the sidecar (intranet): relay-contract.md in code.

Both tiers import this package; it imports neither of them and no HTTP library, so a reviewer
can read the whole contract here.
"""

from contract.accounts import (
    ACCOUNT_KINDS,
    ACCOUNT_NAME_RE,
    RELAY_MODES,
    AccountKind,
    RelayMode,
    account_name_problem,
)
from contract.errors import ContractError, MalformedPayload, SignatureError
from contract.events import (
    Envelope,
    Mode,
    dedupe_key,
    event_id,
    format_timestamp,
    make_envelope,
    parse_envelope,
)
from contract.results import (
    MAX_BATCH,
    Reply,
    Result,
    dump_json,
    events_body,
    load_json,
    parse_events,
    parse_reply,
    parse_results,
    results_body,
    text_reply,
)
from contract.signing import RelaySigner, RelayVerifier, generate_secret, secret_problem

PUSH_PATH = "/relay/v1/events"
LEASE_PATH = "/relay/v1/lease"
ACK_PATH = "/relay/v1/ack"

__all__ = [
    "ACCOUNT_KINDS",
    "ACCOUNT_NAME_RE",
    "ACK_PATH",
    "LEASE_PATH",
    "MAX_BATCH",
    "PUSH_PATH",
    "RELAY_MODES",
    "AccountKind",
    "ContractError",
    "Envelope",
    "MalformedPayload",
    "Mode",
    "RelayMode",
    "RelaySigner",
    "RelayVerifier",
    "Reply",
    "Result",
    "SignatureError",
    "account_name_problem",
    "dedupe_key",
    "dump_json",
    "event_id",
    "events_body",
    "format_timestamp",
    "generate_secret",
    "load_json",
    "make_envelope",
    "parse_envelope",
    "parse_events",
    "parse_reply",
    "parse_results",
    "results_body",
    "secret_problem",
    "text_reply",
]
