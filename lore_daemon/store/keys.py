"""Source keys: how the store names the thing a searchable document is built from.

A key is ``(source_type, source_id)`` — ``("issue", issues.gitlab_id)``,
``("merge_request", merge_requests.gitlab_id)`` or ``("discussion", discussions.id)`` (the local
id, which stays stable across refreshes). ``dirty_sources`` and ``documents`` are keyed the same way,
so ingest can hand the exact keys it touched to a scoped docs phase (docs/surgical-sync.md, invariant 8).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from lore_daemon.errors import LoreError

SourceKey = tuple[str, int]
SourceType = Literal["issue", "merge_request", "discussion"]
EntityKind = Literal["issue", "mr"]
EntityType = Literal["issue", "merge_request"]

SOURCE_TYPES: frozenset[str] = frozenset({"issue", "merge_request", "discussion"})


def entity_type_of(kind: str) -> EntityType:
    """Map the wire kind (``issue`` | ``mr``) to the store's entity type."""
    if kind == "issue":
        return "issue"
    if kind in ("mr", "merge_request"):
        return "merge_request"
    raise LoreError(f"unknown entity kind {kind!r}", "INTERNAL")


def kind_of(entity_type: str) -> EntityKind:
    """Inverse of :func:`entity_type_of`."""
    if entity_type == "issue":
        return "issue"
    if entity_type in ("merge_request", "mr"):
        return "mr"
    raise LoreError(f"unknown entity type {entity_type!r}", "INTERNAL")


def entity_key(kind: str, gitlab_id: int) -> SourceKey:
    """The source key of an issue or MR by its GitLab id."""
    return (entity_type_of(kind), gitlab_id)


def discussion_key(local_id: int) -> SourceKey:
    return ("discussion", local_id)


def check_key(key: SourceKey) -> SourceKey:
    """Reject a malformed key early, before it reaches a CHECK constraint as a bare SQL error."""
    source_type, source_id = key
    if source_type not in SOURCE_TYPES or not isinstance(source_id, int):
        raise LoreError(f"invalid source key {key!r}", "INTERNAL")
    return (source_type, source_id)


def unique_keys(keys: Iterable[SourceKey]) -> list[SourceKey]:
    """Validate and de-duplicate keys, keeping first-seen order (so results are deterministic)."""
    seen: dict[SourceKey, None] = {}
    for key in keys:
        seen.setdefault(check_key(key), None)
    return list(seen)
