"""The dirty-source queue: which documents need regenerating.

``dirty_sources`` is keyed by ``(source_type, source_id)`` with no id column, so re-dirtying a
source UPSERTs its one row and moves ``queued_at`` forward. Scoping therefore works on keys plus
``queued_at`` (never an id high-water mark): a row is cleared only if it was queued no later than
the moment its document was generated, so a re-dirty that lands afterwards survives
(docs/surgical-sync.md, invariant 8).

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

import apsw
import msgspec

from lore_daemon.store.keys import SourceKey, check_key, unique_keys
from lore_daemon.store.multirow import insert_rows

MAX_ERROR_CHARS = 2000

_MARK_INSERT = "INSERT INTO dirty_sources (source_type, source_id, queued_at, attempt_count, last_error)"
_MARK_CONFLICT = """
ON CONFLICT (source_type, source_id) DO UPDATE
SET queued_at = excluded.queued_at, attempt_count = 0, last_error = NULL
"""


def mark_dirty(conn: apsw.Connection, keys: Iterable[SourceKey], *, now_ms: int) -> None:
    """Queue the keys for regeneration; a re-dirty resets its attempts and error."""
    rows = [(source_type, source_id, now_ms, 0, None) for source_type, source_id in unique_keys(keys)]
    insert_rows(conn, _MARK_INSERT, rows, _MARK_CONFLICT)


def dirty_keys(
    conn: apsw.Connection, *, limit: int, max_attempts: int | None = None
) -> list[tuple[SourceKey, int]]:
    """The oldest dirty keys first, with their ``queued_at``.

    ``max_attempts`` leaves out keys that already failed that many times, so one poisoned source
    cannot block the queue; re-dirtying it resets the count.
    """
    cursor = conn.execute(
        """
        SELECT source_type, source_id, queued_at FROM dirty_sources
        WHERE ?1 IS NULL OR attempt_count < ?1
        ORDER BY queued_at, source_type, source_id
        LIMIT ?2
        """,
        (max_attempts, limit),
    )
    return [((str(t), int(i)), int(q)) for t, i, q in cursor]


def clear_dirty_if_not_newer(
    conn: apsw.Connection, keys: Iterable[SourceKey], *, generated_at_ms: int
) -> int:
    """Delete the dirty row of each key unless it was re-queued after ``generated_at_ms``.

    Returns how many rows were deleted. Rows of keys not named are never touched.
    """
    ids_by_type: dict[str, list[int]] = {}
    for source_type, source_id in unique_keys(keys):
        ids_by_type.setdefault(source_type, []).append(source_id)
    before = conn.total_changes()
    for source_type, ids in ids_by_type.items():  # one statement per type, not one per key
        conn.execute(
            "DELETE FROM dirty_sources WHERE source_type = ?"
            " AND source_id IN (SELECT value FROM json_each(?)) AND queued_at <= ?",
            (source_type, msgspec.json.encode(ids), generated_at_ms),
        )
    return conn.total_changes() - before


def record_dirty_failure(conn: apsw.Connection, key: SourceKey, *, error: str) -> None:
    """Count a failed regeneration and keep its (secret-free) error for ``lore/status``."""
    source_type, source_id = check_key(key)
    conn.execute(
        """
        UPDATE dirty_sources SET attempt_count = attempt_count + 1, last_error = ?
        WHERE source_type = ? AND source_id = ?
        """,
        (error[:MAX_ERROR_CHARS], source_type, source_id),
    )


def dirty_count(conn: apsw.Connection) -> int:
    """How many sources wait for regeneration (for status and tests)."""
    row = conn.execute("SELECT count(*) FROM dirty_sources").fetchone()
    return int(row[0]) if row else 0
