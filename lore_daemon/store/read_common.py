"""Pieces shared by the read queries (``read_entity``, ``read_list``, ``read_search``).

Reads run on a reader thread's read-only connection. Each read method runs its statements inside
one read transaction (:func:`snapshot`), so an entity and its discussions, or a page and its
labels, come from one consistent state even while the writer commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

import apsw

from lore_daemon.timeutil import ms_to_datetime

KIND_TABLE = {"issue": "issues", "mr": "merge_requests"}
KIND_ENTITY_TYPE = {"issue": "issue", "mr": "merge_request"}
ENTITY_TYPE_KIND = {"issue": "issue", "merge_request": "mr"}


@contextlib.contextmanager
def snapshot(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """One read transaction around the block (every statement sees the same committed state)."""
    if not conn.in_transaction:
        conn.execute("BEGIN DEFERRED")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")  # a read transaction: nothing to roll back
    else:
        yield conn


def stamp(ms: int) -> datetime:
    return ms_to_datetime(int(ms))


def stamp_or_none(ms: int | None) -> datetime | None:
    return None if ms is None else ms_to_datetime(int(ms))


def clean_username(name: str) -> str:
    """``@Alice`` and ``alice`` name the same user (GitLab usernames compare case-insensitively)."""
    return name.strip().removeprefix("@")


def project_ids(conn: apsw.Connection, project: str) -> list[int]:
    """The mirrored project named by path (any case) or numeric id; [] when not in the mirror."""
    text = project.strip().strip("/")
    if text.isascii() and text.isdigit():
        rows = conn.execute("SELECT gitlab_id FROM projects WHERE gitlab_id = ?", (int(text),))
    else:
        rows = conn.execute(
            "SELECT gitlab_id FROM projects WHERE path_with_namespace = ? COLLATE NOCASE", (text,)
        )
    return [int(row[0]) for row in rows]
