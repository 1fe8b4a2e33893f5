"""The standard sync's tuple cursors (``sync_cursors``): one per project and resource.

A cursor ``(updated_at, gitlab_id)`` promises that every item whose ``(updated_at, gitlab_id)`` is
``<=`` it has been committed. It is written in the same transaction as the item that lets it
advance, so it can never run ahead of what is stored (a crash keeps both or neither).
Functions run inside the caller's transaction (or as a single autocommit read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import apsw

Resource = Literal["issues", "merge_requests"]


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    updated_at: int
    gitlab_id: int

    def covers(self, updated_at: int, gitlab_id: int) -> bool:
        """True when the item ``(updated_at, gitlab_id)`` was already committed by an earlier run."""
        return (updated_at, gitlab_id) <= (self.updated_at, self.gitlab_id)


def read_cursor(conn: apsw.Connection, project_id: int, resource: Resource) -> Cursor | None:
    row = conn.execute(
        "SELECT updated_at, gitlab_id FROM sync_cursors WHERE project_id = ? AND resource = ?",
        (project_id, resource),
    ).fetchone()
    return None if row is None else Cursor(int(row[0]), int(row[1]))


def advance_cursor(
    conn: apsw.Connection, project_id: int, resource: Resource, cursor: Cursor, *, now_ms: int
) -> None:
    """Move the cursor forward to ``cursor``; it never moves backwards."""
    conn.execute(
        """
        INSERT INTO sync_cursors (project_id, resource, updated_at, gitlab_id, synced_at)
        VALUES (?1, ?2, ?3, ?4, ?5)
        ON CONFLICT (project_id, resource) DO UPDATE SET
            updated_at = excluded.updated_at, gitlab_id = excluded.gitlab_id, synced_at = excluded.synced_at
        WHERE (excluded.updated_at, excluded.gitlab_id) > (updated_at, gitlab_id)
        """,
        (project_id, resource, cursor.updated_at, cursor.gitlab_id, now_ms),
    )
