"""Typed decoding of GitLab bodies: whole pages, each item with its exact bytes, item by item.

A decode failure raises ``msgspec.ValidationError`` (the client reports it as
``GITLAB_BAD_RESPONSE``, not retried: it is deterministic) or ``msgspec.DecodeError`` (truncated or
not JSON: retried). Primary entities' timestamps are checked here, once, where the payload enters:
a malformed ``updated_at`` is GitLab's fault and must not surface later as an internal error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from . import models as m

T = TypeVar("T")

# Typed decoders are immutable, thread-safe and costly to build: build each once.
USER = msgspec.json.Decoder(m.CurrentUser)
VERSION = msgspec.json.Decoder(m.Version)
PROJECT = msgspec.json.Decoder(m.Project)
ISSUE = msgspec.json.Decoder(m.Issue)
MR = msgspec.json.Decoder(m.MergeRequest)
RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
DISCUSSIONS = msgspec.json.Decoder(list[m.Discussion])
EVENTS: dict[str, msgspec.json.Decoder[Any]] = {
    "state": msgspec.json.Decoder(list[m.StateEvent]),
    "label": msgspec.json.Decoder(list[m.LabelEvent]),
    "milestone": msgspec.json.Decoder(list[m.MilestoneEvent]),
}
DIFFS = msgspec.json.Decoder(list[m.MrDiff])
_CLOSES_INTERNAL = msgspec.json.Decoder(m.ClosesIssue)
_CLOSES_EXTERNAL = msgspec.json.Decoder(m.ExternalIssue)

_TIMESTAMPS = ("created_at", "updated_at", "closed_at", "merged_at")


def check_times(item: m.Issue | m.MergeRequest) -> None:
    """Raise ``ValidationError`` naming the field when a timestamp is not ISO-8601."""
    for name in _TIMESTAMPS:
        value = getattr(item, name, None)
        if value is None:
            continue
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise msgspec.ValidationError(
                f"Expected an ISO-8601 timestamp, got {value[:40]!r} - at `$.{name}`"
            ) from None


def fetched(decoder: msgspec.json.Decoder[Any]) -> Callable[[bytes], m.Fetched[Any]]:
    """One issue or MR with its exact bytes (for ``raw_payloads``)."""

    def decode(body: bytes) -> m.Fetched[Any]:
        item = decoder.decode(body)
        check_times(item)
        return m.Fetched(item, body)

    return decode


def fetched_page(decoder: msgspec.json.Decoder[Any]) -> Callable[[bytes], list[m.Fetched[Any]]]:
    """A list page of issues or MRs, each item with its own exact bytes."""

    def decode(body: bytes) -> list[m.Fetched[Any]]:
        out = []
        for index, raw in enumerate(RAW_LIST.decode(body)):
            item = decoder.decode(raw)
            try:
                check_times(item)
            except msgspec.ValidationError as exc:
                raise msgspec.ValidationError(str(exc).replace("`$.", f"`$[{index}].")) from None
            out.append(m.Fetched(item, bytes(raw)))
        return out

    return decode


def closes_page(body: bytes) -> list[m.ClosesIssue | m.ExternalIssue]:
    """``closes_issues`` item by item: an issue of this GitLab, else an external tracker's issue
    (string id); an item that is neither fails the page as an issue would."""
    out: list[m.ClosesIssue | m.ExternalIssue] = []
    for index, raw in enumerate(RAW_LIST.decode(body)):
        try:
            out.append(_CLOSES_INTERNAL.decode(raw))
        except msgspec.ValidationError as internal_error:
            try:
                out.append(_CLOSES_EXTERNAL.decode(raw))
            except msgspec.ValidationError:
                raise msgspec.ValidationError(str(internal_error).replace("`$", f"`$[{index}]")) from None
    return out


def split_closes(items: list[m.ClosesIssue | m.ExternalIssue]) -> m.ClosesIssues:
    return m.ClosesIssues(
        internal=[i for i in items if isinstance(i, m.ClosesIssue)],
        external=[i for i in items if isinstance(i, m.ExternalIssue)],
    )
