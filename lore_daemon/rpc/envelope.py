"""Check a decoded message against the JSON-RPC 2.0 envelope before pygls sees it.

pygls assumes a well-formed object: a JSON array, a number, a missing ``jsonrpc`` or a boolean
``id`` would be dropped or crash its dispatcher without a reply. Here each gets the answer the
JSON-RPC specification asks for (``-32600`` with the request's id when it has a usable one, else
``null``), and nothing malformed goes further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSONRPC_VERSION = "2.0"


@dataclass(frozen=True, slots=True)
class EnvelopeProblem:
    """Why a message is not a valid JSON-RPC 2.0 message; ``reply_id`` is None to answer null."""

    reason: str
    reply_id: int | str | None
    must_reply: bool


def valid_id(value: Any) -> bool:
    """JSON-RPC ids the daemon answers to: strings and integers (a bool is not an integer)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def check_envelope(message: Any) -> EnvelopeProblem | None:
    """None when ``message`` is a request, notification or response pygls can dispatch."""
    if not isinstance(message, dict):
        kind = "an array (batches are not supported)" if isinstance(message, list) else type(message).__name__
        return EnvelopeProblem(f"a JSON-RPC message must be an object, got {kind}", None, True)
    has_id = "id" in message
    msg_id = message.get("id")
    reply_id = msg_id if valid_id(msg_id) else None
    if message.get("jsonrpc") != JSONRPC_VERSION:
        return EnvelopeProblem('"jsonrpc" must be "2.0"', reply_id, True)
    if has_id and not valid_id(msg_id):
        return EnvelopeProblem('"id" must be a string or an integer', None, True)
    if "method" in message:
        if not isinstance(message["method"], str) or not message["method"]:
            return EnvelopeProblem('"method" must be a non-empty string', reply_id, has_id)
        return None
    if has_id and ("result" in message or "error" in message):
        if "error" in message and not isinstance(message["error"], dict):
            return EnvelopeProblem('"error" must be an object', None, False)
        return None  # a response to one of the daemon's own requests
    return EnvelopeProblem('a message needs "method", or "id" with "result"/"error"', reply_id, True)
