"""The write side of a surgical run: functions that run on the writer thread, one transaction each.

* :func:`ingest_primaries` writes the project and EVERY primary in one transaction (primary
  atomicity: docs/surgical-sync.md, invariant 2) with the stale-write guard (invariant 6). It
  never enqueues dependent jobs: surgical runs do not touch ``pending_dependent_fetches``
  (invariant 7).
* :func:`write_target_dependents` writes one target's prefetched dependents in its own
  transaction, so a cancellation rolls back at most the target being written.
* :func:`regenerate_target_documents` regenerates exactly the given keys (invariant 8), one savepoint per
  target so one unrenderable source costs only its own target's documents;
  :func:`clear_dirty_rows` then removes their dirty rows unless re-queued after generation.

Every function polls ``check_cancelled`` between items: raising there rolls the open transaction
back before the cancelled run releases its lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from lore_daemon.errors import LoreError
from lore_daemon.gitlab.models import Fetched, Issue, MergeRequest, Project
from lore_daemon.store.dirty import clear_dirty_if_not_newer
from lore_daemon.store.documents import DocsOutcome, regenerate_documents
from lore_daemon.store.entities import IngestOutcome, ingest_issue, ingest_merge_request, upsert_project
from lore_daemon.store.keys import EntityKind, SourceKey
from lore_daemon.sync.dependents import DependentsWritten, FetchedDependents, write_dependents

CheckCancelled = Callable[[], None]
Target = tuple[EntityKind, int]

NO_WATERMARK = -1
"""A parent version below every real one: watermarks only move forward, so it leaves them as they are."""


def provable_watermark(outcome: str, updated_at_ms: int) -> int:
    """The parent version this run's dependents provably reflect (the watermark they may claim).

    Surgical dependent fetches start while the primary is still being fetched, so for a target
    whose version is NEW in this run the dependents may predate it (a note added between the two
    requests bumps ``updated_at`` but is missing from the discussions). Claiming that version would
    make the standard sync skip the refetch and lose the note. Only an ``unchanged`` target's
    version is provably older than the dependent fetch: it was stored (``last_seen_at``) before
    this run's preflight started, or the stale guard would have skipped it. Otherwise the
    watermarks stay where they were, so the standard sync refetches these dependents once.
    """
    return updated_at_ms if outcome == "unchanged" else NO_WATERMARK


def ingest_primaries(
    conn: apsw.Connection,
    project: Project,
    issues: Sequence[Fetched[Issue]],
    mrs: Sequence[Fetched[MergeRequest]],
    *,
    now_ms: int,
    stale_guard_ms: int,
    check_cancelled: CheckCancelled,
) -> list[IngestOutcome]:
    """All primaries or none. ``stale_guard_ms`` is when this run's preflight started."""
    outcomes: list[IngestOutcome] = []
    with conn:
        upsert_project(conn, project, now_ms=now_ms)
        primaries: list[tuple[Any, Fetched[Any]]] = [
            *((ingest_issue, fetched) for fetched in issues),
            *((ingest_merge_request, fetched) for fetched in mrs),
        ]
        for ingest, fetched in primaries:
            check_cancelled()
            outcomes.append(ingest(
                conn, project.id, fetched,
                now_ms=now_ms, stale_guard_ms=stale_guard_ms, enqueue_dependents=False,
            ))
        check_cancelled()
    return outcomes


def write_target_dependents(
    conn: apsw.Connection,
    fetched: FetchedDependents,
    *,
    parent_id: int,
    parent_updated_at_ms: int,
    now_ms: int,
    check_cancelled: CheckCancelled,
) -> DependentsWritten:
    """One target's successful dependent stages (and their watermarks), atomically."""
    with conn:
        check_cancelled()
        written = write_dependents(
            conn, fetched, parent_id=parent_id, parent_updated_at_ms=parent_updated_at_ms,
            now_ms=now_ms, cancel=check_cancelled,
        )
        check_cancelled()
    return written


@dataclass(frozen=True, slots=True)
class TargetDocs:
    """Documents of one target: the ids regenerated, the ids already up to date, or the error."""

    regenerated_ids: list[int]
    unchanged_ids: list[int]
    deleted: int
    error: LoreError | None = None


def regenerate_target_documents(
    conn: apsw.Connection,
    keys_by_target: dict[Target, list[SourceKey]],
    *,
    now_ms: int,
    check_cancelled: CheckCancelled,
    write_chunk: int,
) -> dict[Target, TargetDocs]:
    """Regenerate exactly these keys; ``now_ms`` is the generation time every document gets."""
    out: dict[Target, TargetDocs] = {}
    with conn:
        for target, keys in keys_by_target.items():
            check_cancelled()
            try:
                with conn:  # savepoint: a failed render rolls back this target only
                    docs: DocsOutcome = regenerate_documents(
                        conn, keys, now_ms=now_ms, write_chunk=write_chunk
                    )
            except (apsw.Error, LoreError, ValueError, KeyError) as exc:
                error = exc if isinstance(exc, LoreError) else LoreError(
                    f"rendering the documents failed: {type(exc).__name__}: {exc}", "INTERNAL"
                )
                out[target] = TargetDocs([], [], 0, error)
                continue
            out[target] = TargetDocs(docs.regenerated_ids, docs.unchanged_ids, docs.deleted)
    return out


def clear_dirty_rows(conn: apsw.Connection, keys: Sequence[SourceKey], *, generated_at_ms: int) -> int:
    """Remove the named keys' dirty rows unless re-queued after ``generated_at_ms``
    (docs/surgical-sync.md, invariant 8)."""
    with conn:
        deleted = clear_dirty_if_not_newer(conn, keys, generated_at_ms=generated_at_ms)
    return deleted
