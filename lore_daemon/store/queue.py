"""The standard sync's dependent-job queue, ``pending_dependent_fetches``.

A row is a job still to do and is DELETED when the job completes; there is no status column.
Surgical runs never touch this table (docs/surgical-sync.md, invariant 7). Semantics:

- ``enqueue_job`` is an idempotent UPSERT on (project, entity type, iid, job type). A newer parent
  version (higher ``target_updated_at``) makes the job due now: attempts, backoff and error reset.
  If the job is claimed at that moment, it is flagged *superseded* (``next_retry_at`` set while
  locked); its ``complete_job`` then releases it instead of deleting it, so the newer version is
  fetched by a later claim and never lost.
- ``claim_jobs`` takes due, unlocked jobs, or jobs whose claim is older than ``stale_claim_ms``
  (a crashed worker), oldest first. Claiming clears ``next_retry_at``.
- ``fail_job`` backs off exponentially: ``base * 2**(attempts-1)`` capped at ``max_backoff_ms``.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import apsw
import msgspec

from lore_daemon.store.multirow import insert_rows

JOB_TYPES: Final = ("discussions", "resource_events", "mr_closes_issues", "mr_diffs")
# Which watermark (``<dependent>_synced_for_updated_at``) a job type brings up to date.
JOB_DEPENDENT: Final[dict[str, str]] = {
    "discussions": "discussions",
    "resource_events": "events",
    "mr_closes_issues": "closes_issues",
    "mr_diffs": "diffs",
}
ISSUE_JOB_TYPES: Final = ("discussions", "resource_events")
MR_JOB_TYPES: Final = JOB_TYPES
MAX_ERROR_CHARS: Final = 2000


@dataclass(frozen=True, slots=True)
class DependentJob:
    id: int
    project_id: int
    entity_type: str  # "issue" | "merge_request"
    entity_iid: int
    entity_id: int
    job_type: str
    target_updated_at: int | None
    attempts: int


_ENQUEUE_HEAD = """
INSERT INTO pending_dependent_fetches
    (project_id, entity_type, entity_iid, entity_id, job_type, target_updated_at, enqueued_at)
"""
_ENQUEUE_TAIL = """
ON CONFLICT (project_id, entity_type, entity_iid, job_type) DO UPDATE SET
    entity_id = excluded.entity_id,
    target_updated_at = excluded.target_updated_at,
    attempts = 0,
    last_error = NULL,
    next_retry_at = CASE WHEN locked_at IS NULL THEN NULL ELSE excluded.enqueued_at END
WHERE excluded.target_updated_at > coalesce(target_updated_at, -1)
   OR entity_id <> excluded.entity_id
"""
_ENQUEUE = _ENQUEUE_HEAD + "VALUES (?, ?, ?, ?, ?, ?, ?)" + _ENQUEUE_TAIL

# (project_id, entity_type, entity_iid, entity_id, job_type, target_updated_at, now_ms)
JobRow = tuple[int, str, int, int, str, int, int]


def enqueue_job(
    conn: apsw.Connection,
    *,
    project_id: int,
    entity_type: str,
    entity_iid: int,
    entity_id: int,
    job_type: str,
    target_updated_at: int,
    now_ms: int,
) -> None:
    """Idempotently queue a job; a no-op (zero writes) unless it is new or its target moved up."""
    conn.execute(
        _ENQUEUE, (project_id, entity_type, entity_iid, entity_id, job_type, target_updated_at, now_ms)
    )


_CLAIM = """
UPDATE pending_dependent_fetches
SET locked_at = ?1, locked_by = ?2, next_retry_at = NULL
WHERE id IN (
    SELECT id FROM pending_dependent_fetches
    WHERE (locked_at IS NULL AND (next_retry_at IS NULL OR next_retry_at <= ?1))
       OR (locked_at IS NOT NULL AND locked_at <= ?1 - ?3)
    ORDER BY id
    LIMIT ?4
)
RETURNING id, project_id, entity_type, entity_iid, entity_id, job_type, target_updated_at, attempts
"""


def enqueue_jobs(conn: apsw.Connection, rows: Sequence[JobRow]) -> None:
    """``enqueue_job`` for many jobs in multi-row statements, applied in order."""
    insert_rows(conn, _ENQUEUE_HEAD, rows, _ENQUEUE_TAIL)


def claim_jobs(
    conn: apsw.Connection, *, owner: str, now_ms: int, limit: int, stale_claim_ms: int
) -> list[DependentJob]:
    """Claim up to ``limit`` due jobs for ``owner``, oldest first."""
    jobs = [
        DependentJob(int(i), int(pid), str(etype), int(iid), int(eid), str(jtype),
                     None if target is None else int(target), int(attempts))
        for i, pid, etype, iid, eid, jtype, target, attempts in conn.execute(
            _CLAIM, (now_ms, owner, stale_claim_ms, limit)
        )
    ]
    return sorted(jobs, key=lambda job: job.id)


def complete_job(conn: apsw.Connection, job_id: int, *, owner: str) -> bool:
    """Delete a finished job. False if the claim was lost or a newer parent version superseded it
    (then the job is released for a later claim rather than deleted)."""
    conn.execute(
        "DELETE FROM pending_dependent_fetches WHERE id = ? AND locked_by = ? AND next_retry_at IS NULL",
        (job_id, owner),
    )
    if conn.changes():
        return True
    conn.execute(
        "UPDATE pending_dependent_fetches SET locked_at = NULL, locked_by = NULL"
        " WHERE id = ? AND locked_by = ?",
        (job_id, owner),
    )
    return False


def fail_job(
    conn: apsw.Connection,
    job_id: int,
    *,
    owner: str,
    error: str,
    now_ms: int,
    base_backoff_ms: int = 30_000,
    max_backoff_ms: int = 3_600_000,
) -> None:
    """Record a failure and back off. ``error`` must be a code + message, never a secret."""
    conn.execute(
        """
        UPDATE pending_dependent_fetches
        SET attempts = attempts + 1,
            next_retry_at = ?1 + min(?2, ?3 * (1 << min(attempts, 40))),
            locked_at = NULL, locked_by = NULL, last_error = ?4
        WHERE id = ?5 AND locked_by = ?6
        """,
        (now_ms, max_backoff_ms, base_backoff_ms, error[:MAX_ERROR_CHARS], job_id, owner),
    )


def release_claims(conn: apsw.Connection, *, owner: str) -> int:
    """Unlock every job ``owner`` holds (cancel or exit); returns how many."""
    conn.execute(
        "UPDATE pending_dependent_fetches SET locked_at = NULL, locked_by = NULL WHERE locked_by = ?",
        (owner,),
    )
    return conn.changes()


def queue_depths(conn: apsw.Connection) -> dict[str, int]:
    """Jobs per job type, plus ``locked`` (claimed now) and ``failed`` (attempts > 0)."""
    depths = dict.fromkeys(JOB_TYPES, 0)
    for job_type, count in conn.execute(
        "SELECT job_type, count(*) FROM pending_dependent_fetches GROUP BY job_type"
    ):
        depths[str(job_type)] = int(count)
    locked, failed = conn.execute(
        """
        SELECT coalesce(sum(locked_at IS NOT NULL), 0), coalesce(sum(attempts > 0), 0)
        FROM pending_dependent_fetches
        """
    ).fetchone() or (0, 0)
    depths["locked"] = int(locked)
    depths["failed"] = int(failed)
    return depths


# The unary ``+`` keeps SQLite off the ``ready`` index (next_retry_at, locked_at): without it the
# planner walked every not-backed-off job for each call (0.8 ms a call at 24k queued jobs)
# instead of looking the listed ids up by rowid.
_COMPLETE_MANY = """
DELETE FROM pending_dependent_fetches
WHERE id IN (SELECT value FROM json_each(?1)) AND locked_by = ?2 AND +next_retry_at IS NULL
RETURNING id
"""
_RELEASE_MANY = """
UPDATE pending_dependent_fetches SET locked_at = NULL, locked_by = NULL
WHERE id IN (SELECT value FROM json_each(?1)) AND locked_by = ?2
"""


def complete_jobs(conn: apsw.Connection, job_ids: list[int], *, owner: str) -> int:
    """``complete_job`` for many jobs in two statements; returns how many were deleted (the rest
    lost their claim or were superseded, and are released as ``complete_job`` does)."""
    if not job_ids:
        return 0
    deleted = {int(row[0]) for row in conn.execute(_COMPLETE_MANY, (msgspec.json.encode(job_ids), owner))}
    kept = [job_id for job_id in job_ids if job_id not in deleted]
    if kept:
        conn.execute(_RELEASE_MANY, (msgspec.json.encode(kept), owner))
    return len(deleted)
