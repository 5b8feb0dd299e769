"""Acknowledgements: the ``results`` list of a push answer and of a pull-mode ack.

An event is acknowledged only when its id appears here with status ``accepted`` or
``duplicate``; anything else means "retry later" (relay-contract.md, "Push mode").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal, TypedDict

from contract.errors import ContractError, MalformedPayload
from contract.events import EVENT_ID_RE, Envelope, parse_envelope

Status = Literal["accepted", "duplicate"]
STATUSES: frozenset[str] = frozenset({"accepted", "duplicate"})
MAX_BATCH = 100
MAX_REPLY_CHARS = 2048


class Reply(TypedDict):
    """A passive reply the sidecar wants shown to the WeChat user (text only)."""

    type: Literal["text"]
    content: str


class Result(TypedDict):
    id: str
    status: Status
    reply: Reply | None


def text_reply(content: str) -> Reply:
    return Reply(type="text", content=content)


def parse_reply(obj: Any) -> Reply | None:
    if obj is None:
        return None
    if not isinstance(obj, dict) or obj.get("type") != "text":
        raise ContractError("reply must be null or {\"type\": \"text\", \"content\": ...}")
    content = obj.get("content")
    if not isinstance(content, str) or len(content) > MAX_REPLY_CHARS:
        raise ContractError(f"reply content must be a string of at most {MAX_REPLY_CHARS} chars")
    return text_reply(content)


def parse_results(obj: Any) -> list[Result]:
    """Validate ``{"results": [...]}``; raise ContractError on any entry that breaks the shape."""
    if not isinstance(obj, dict) or not isinstance(obj.get("results"), list):
        raise MalformedPayload("body must be an object with a 'results' list")
    results: list[Result] = []
    for entry in obj["results"]:
        if not isinstance(entry, dict):
            raise MalformedPayload("each result must be an object")
        event = entry.get("id")
        if not isinstance(event, str) or not EVENT_ID_RE.match(event):
            raise MalformedPayload("result id must be evt_ + 32 hex digits")
        status = entry.get("status")
        if not isinstance(status, str) or status not in STATUSES:  # a list is unhashable: test the type first
            raise MalformedPayload(f"result status for {event} must be accepted or duplicate")
        results.append(Result(id=event, status=entry["status"], reply=parse_reply(entry.get("reply"))))
    return results


def parse_events(obj: Any) -> list[Envelope]:
    """Validate ``{"events": [...]}`` (a push body or a lease answer)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("events"), list):
        raise MalformedPayload("body must be an object with an 'events' list")
    if len(obj["events"]) > MAX_BATCH:
        raise MalformedPayload(f"at most {MAX_BATCH} events per request")
    return [parse_envelope(event) for event in obj["events"]]


def events_body(envelopes: Iterable[str], **fields: Any) -> bytes:
    """``{"events": [...], **fields}`` (a push body or a lease answer) from envelopes already
    serialised by :func:`dump_json`, byte for byte what ``dump_json`` would write for the parsed
    envelopes: a relay batch (up to 100 events) is spliced, not parsed and re-serialised."""
    events = '{"events":[' + ",".join(envelopes) + "]"
    if not fields:
        return (events + "}").encode("utf-8")
    return (events + ",").encode("utf-8") + dump_json(fields)[1:]


def results_body(results: Iterable[Result]) -> bytes:
    """``{"results": [...]}`` (a push answer or a pull-mode ack), the bytes that get signed."""
    return dump_json({"results": list(results)})


def load_json(body: bytes) -> Any:
    """Decode a relay body; bad UTF-8 or JSON, nesting deeper than the parser's recursion limit and
    lone surrogates become MalformedPayload, never a bare ValueError or RecursionError.

    ``"\\ud800"`` is valid JSON but not Unicode text: it could be neither hashed into an event id
    nor stored, so it is refused here. Valid UTF-8 cannot carry a surrogate, so only a body with a
    ``\\u`` escape needs the check.
    """
    try:
        text = body.decode("utf-8")
        obj = json.loads(text)
        if "\\u" in text:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPayload(f"body is not UTF-8 JSON: {exc.__class__.__name__}") from None
    except RecursionError:
        raise MalformedPayload("body is JSON nested too deeply") from None
    except UnicodeEncodeError:
        raise MalformedPayload("body holds a lone surrogate escape (\\ud800-\\udfff), which is not text") from None
    return obj


def dump_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the byte string that gets signed."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
