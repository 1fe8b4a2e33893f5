"""Dependent writes of an issue or MR: discussions, resource events, closes links, file changes.

Each ``replace_*`` is a full refresh for one parent: rows no longer sent are deleted, the rest are
upserted, and an unchanged refresh writes nothing. They mark dirty, themselves, the sources whose
document changes (discussions; the MR for its closes links and changed files — both appear in the
MR document) and return those keys, so a surgical run can scope its docs phase exactly.
Standard and surgical sync share them. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import apsw

from lore_daemon.errors import LoreError
from lore_daemon.gitlab.models import (
    ClosesIssue,
    Discussion,
    LabelEvent,
    MilestoneEvent,
    MrDiff,
    StateEvent,
)
from lore_daemon.store.dirty import mark_dirty
from lore_daemon.store.discussions import delete_parent_discussions, refresh_discussions
from lore_daemon.store.keys import SourceKey, entity_key, entity_type_of
from lore_daemon.store.multirow import insert_rows
from lore_daemon.timeutil import iso_to_ms
from lore_daemon.timeutil import now_ms as wall_clock_ms

DependentName = Literal["discussions", "events", "closes_issues", "diffs"]


@dataclass(frozen=True, slots=True)
class DependentWrite:
    """What a refresh did. ``rows`` = items now stored for the parent (what counters report)."""

    touched: frozenset[SourceKey]
    rows: int
    changed: bool
    discussions: int = 0
    notes: int = 0


def replace_discussions(
    conn: apsw.Connection,
    *,
    project_id: int,
    parent_kind: Literal["issue", "mr"],
    parent_id: int,
    discussions: list[Discussion],
    now_ms: int,
) -> DependentWrite:
    """Full refresh of a parent's threads; dirties only new, changed or vanished discussions."""
    touched, n_discussions, n_notes, changed = refresh_discussions(
        conn, project_id=project_id, parent_kind=parent_kind, parent_id=parent_id,
        discussions=discussions, now_ms=now_ms,
    )
    return DependentWrite(touched, n_discussions + n_notes, changed, n_discussions, n_notes)


# (SELECT existing ids, DELETE one, INSERT head, ON CONFLICT tail) per event kind — fixed SQL; the
# rows go in as multi-row statements (store/multirow.py).
_EVENT_SQL: Final = {
    "state": (
        "SELECT gitlab_id FROM resource_state_events WHERE entity_type = ? AND entity_id = ?",
        "DELETE FROM resource_state_events WHERE gitlab_id = ?",
        """
        INSERT INTO resource_state_events (gitlab_id, project_id, entity_type, entity_id, user_id,
            username, created_at, state, source_commit, source_merge_request_id)""",
        """
        ON CONFLICT (gitlab_id) DO UPDATE SET project_id = excluded.project_id,
            entity_type = excluded.entity_type, entity_id = excluded.entity_id,
            user_id = excluded.user_id, username = excluded.username,
            created_at = excluded.created_at, state = excluded.state,
            source_commit = excluded.source_commit,
            source_merge_request_id = excluded.source_merge_request_id
        WHERE (project_id, entity_type, entity_id, user_id, username, created_at, state,
               source_commit, source_merge_request_id)
           IS NOT (excluded.project_id, excluded.entity_type, excluded.entity_id, excluded.user_id,
               excluded.username, excluded.created_at, excluded.state, excluded.source_commit,
               excluded.source_merge_request_id)
        """,
    ),
    "label": (
        "SELECT gitlab_id FROM resource_label_events WHERE entity_type = ? AND entity_id = ?",
        "DELETE FROM resource_label_events WHERE gitlab_id = ?",
        """
        INSERT INTO resource_label_events (gitlab_id, project_id, entity_type, entity_id, user_id,
            username, created_at, action, label_id, label_name, label_color)""",
        """
        ON CONFLICT (gitlab_id) DO UPDATE SET project_id = excluded.project_id,
            entity_type = excluded.entity_type, entity_id = excluded.entity_id,
            user_id = excluded.user_id, username = excluded.username,
            created_at = excluded.created_at, action = excluded.action,
            label_id = excluded.label_id, label_name = excluded.label_name,
            label_color = excluded.label_color
        WHERE (project_id, entity_type, entity_id, user_id, username, created_at, action, label_id,
               label_name, label_color)
           IS NOT (excluded.project_id, excluded.entity_type, excluded.entity_id, excluded.user_id,
               excluded.username, excluded.created_at, excluded.action, excluded.label_id,
               excluded.label_name, excluded.label_color)
        """,
    ),
    "milestone": (
        "SELECT gitlab_id FROM resource_milestone_events WHERE entity_type = ? AND entity_id = ?",
        "DELETE FROM resource_milestone_events WHERE gitlab_id = ?",
        """
        INSERT INTO resource_milestone_events (gitlab_id, project_id, entity_type, entity_id,
            user_id, username, created_at, action, milestone_id, milestone_title)""",
        """
        ON CONFLICT (gitlab_id) DO UPDATE SET project_id = excluded.project_id,
            entity_type = excluded.entity_type, entity_id = excluded.entity_id,
            user_id = excluded.user_id, username = excluded.username,
            created_at = excluded.created_at, action = excluded.action,
            milestone_id = excluded.milestone_id, milestone_title = excluded.milestone_title
        WHERE (project_id, entity_type, entity_id, user_id, username, created_at, action,
               milestone_id, milestone_title)
           IS NOT (excluded.project_id, excluded.entity_type, excluded.entity_id, excluded.user_id,
               excluded.username, excluded.created_at, excluded.action, excluded.milestone_id,
               excluded.milestone_title)
        """,
    ),
}


def replace_resource_events(
    conn: apsw.Connection,
    *,
    project_id: int,
    parent_kind: Literal["issue", "mr"],
    parent_id: int,
    state: list[StateEvent],
    label: list[LabelEvent],
    milestone: list[MilestoneEvent],
) -> DependentWrite:
    """Full refresh of the three event kinds of one parent. Events are not in any document."""
    entity_type = entity_type_of(parent_kind)
    head = (project_id, entity_type, parent_id)

    def common(event: StateEvent | LabelEvent | MilestoneEvent) -> tuple[object, ...]:
        user = event.user
        return (event.id, *head, user.id if user else None, user.username if user else None,
                iso_to_ms(event.created_at))

    # Keyed by event id: a repeated event (page overlap) is stored once.
    rows_by_kind: dict[str, dict[int, tuple[object, ...]]] = {
        "state": {e.id: (*common(e), e.state, e.source_commit, e.source_merge_request_id) for e in state},
        "label": {
            e.id: (*common(e), e.action, e.label.id if e.label else None,
                   e.label.name if e.label else None, e.label.color if e.label else None)
            for e in label
        },
        "milestone": {
            e.id: (*common(e), e.action, e.milestone.id if e.milestone else None,
                   e.milestone.title if e.milestone else None)
            for e in milestone
        },
    }
    before = conn.total_changes()
    total = 0
    for kind, unique in rows_by_kind.items():
        select_sql, delete_sql, insert_head, on_conflict = _EVENT_SQL[kind]
        existing = {int(r[0]) for r in conn.execute(select_sql, (entity_type, parent_id))}
        gone = existing - unique.keys()
        if gone:
            conn.executemany(delete_sql, [(gitlab_id,) for gitlab_id in sorted(gone)])
        insert_rows(conn, insert_head, list(unique.values()), on_conflict)
        total += len(unique)
    return DependentWrite(frozenset(), total, conn.total_changes() != before)


_UPSERT_CLOSES = """
INSERT INTO entity_references (project_id, source_type, source_id, target_type, target_id,
                               target_project_id, target_iid, reference_type)
VALUES (?, 'merge_request', ?, 'issue', ?, ?, ?, 'closes')
ON CONFLICT (source_type, source_id, target_type, target_id, reference_type) DO UPDATE SET
    project_id = excluded.project_id, target_project_id = excluded.target_project_id,
    target_iid = excluded.target_iid
WHERE (project_id, target_project_id, target_iid)
   IS NOT (excluded.project_id, excluded.target_project_id, excluded.target_iid)
"""


def replace_closes_issues(
    conn: apsw.Connection,
    *,
    project_id: int,
    mr_id: int,
    issues: list[ClosesIssue],
    now_ms: int | None = None,
) -> DependentWrite:
    """Full refresh of the MR's ``closes`` links (one per MR/issue pair); dirties the MR on change."""
    unique = {issue.id: issue for issue in issues}
    before = conn.total_changes()
    existing = {
        int(row[0])
        for row in conn.execute(
            """
            SELECT target_id FROM entity_references WHERE source_type = 'merge_request'
            AND source_id = ? AND target_type = 'issue' AND reference_type = 'closes'
            """,
            (mr_id,),
        )
    }
    gone = sorted(existing - set(unique))
    if gone:
        conn.executemany(
            """
            DELETE FROM entity_references WHERE source_type = 'merge_request' AND source_id = ?
            AND target_type = 'issue' AND target_id = ? AND reference_type = 'closes'
            """,
            [(mr_id, target_id) for target_id in gone],
        )
    if unique:
        conn.executemany(
            _UPSERT_CLOSES,
            [(project_id, mr_id, i.id, i.project_id, i.iid) for i in unique.values()],
        )
    return _dirty_mr_if_changed(conn, mr_id, before, len(unique), now_ms)


_UPSERT_FILE = """
INSERT INTO mr_file_changes (merge_request_id, old_path, new_path, a_mode, b_mode, new_file,
                             renamed_file, deleted_file)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (merge_request_id, old_path, new_path) DO UPDATE SET
    a_mode = excluded.a_mode, b_mode = excluded.b_mode, new_file = excluded.new_file,
    renamed_file = excluded.renamed_file, deleted_file = excluded.deleted_file
WHERE (a_mode, b_mode, new_file, renamed_file, deleted_file)
   IS NOT (excluded.a_mode, excluded.b_mode, excluded.new_file, excluded.renamed_file,
           excluded.deleted_file)
"""


def replace_mr_diffs(
    conn: apsw.Connection, *, mr_id: int, diffs: list[MrDiff], now_ms: int | None = None
) -> DependentWrite:
    """Full refresh of the MR's changed files (paths and flags; diff text is not stored)."""
    unique = {(d.old_path, d.new_path): d for d in diffs}
    before = conn.total_changes()
    existing = {
        (str(old), str(new))
        for old, new in conn.execute(
            "SELECT old_path, new_path FROM mr_file_changes WHERE merge_request_id = ?", (mr_id,)
        )
    }
    gone = sorted(existing - set(unique))
    if gone:
        conn.executemany(
            "DELETE FROM mr_file_changes WHERE merge_request_id = ? AND old_path = ? AND new_path = ?",
            [(mr_id, old, new) for old, new in gone],
        )
    if unique:
        conn.executemany(
            _UPSERT_FILE,
            [
                (mr_id, d.old_path, d.new_path, d.a_mode, d.b_mode, int(d.new_file),
                 int(d.renamed_file), int(d.deleted_file))
                for d in unique.values()
            ],
        )
    return _dirty_mr_if_changed(conn, mr_id, before, len(unique), now_ms)


def _dirty_mr_if_changed(
    conn: apsw.Connection, mr_id: int, before: int, rows: int, now_ms: int | None
) -> DependentWrite:
    if conn.total_changes() == before:
        return DependentWrite(frozenset(), rows, False)
    key = entity_key("mr", mr_id)
    mark_dirty(conn, [key], now_ms=wall_clock_ms() if now_ms is None else now_ms)
    return DependentWrite(frozenset({key}), rows, True)


# Watermark updates: fixed statements per (parent kind, dependent); they never move backwards.
_WATERMARK_SQL: Final[dict[tuple[str, str], str]] = {
    ("issue", "discussions"): "UPDATE issues SET discussions_synced_for_updated_at = ?1 WHERE gitlab_id = ?2"
    " AND coalesce(discussions_synced_for_updated_at, -1) < ?1",
    ("issue", "events"): "UPDATE issues SET events_synced_for_updated_at = ?1 WHERE gitlab_id = ?2"
    " AND coalesce(events_synced_for_updated_at, -1) < ?1",
    ("mr", "discussions"): "UPDATE merge_requests SET discussions_synced_for_updated_at = ?1"
    " WHERE gitlab_id = ?2 AND coalesce(discussions_synced_for_updated_at, -1) < ?1",
    ("mr", "events"): "UPDATE merge_requests SET events_synced_for_updated_at = ?1"
    " WHERE gitlab_id = ?2 AND coalesce(events_synced_for_updated_at, -1) < ?1",
    ("mr", "closes_issues"): "UPDATE merge_requests SET closes_issues_synced_for_updated_at = ?1"
    " WHERE gitlab_id = ?2 AND coalesce(closes_issues_synced_for_updated_at, -1) < ?1",
    ("mr", "diffs"): "UPDATE merge_requests SET diffs_synced_for_updated_at = ?1"
    " WHERE gitlab_id = ?2 AND coalesce(diffs_synced_for_updated_at, -1) < ?1",
}


def set_watermark(
    conn: apsw.Connection,
    parent_kind: Literal["issue", "mr"],
    parent_id: int,
    dependent: DependentName,
    updated_at_ms: int,
) -> None:
    """Record that ``dependent`` is synced for the parent version ``updated_at_ms`` (monotonic)."""
    kind = "issue" if entity_type_of(parent_kind) == "issue" else "mr"
    sql = _WATERMARK_SQL.get((kind, dependent))
    if sql is None:
        raise LoreError(f"no {dependent!r} watermark for a {parent_kind}", "INTERNAL")
    conn.execute(sql, (updated_at_ms, parent_id))


def delete_entity_dependents(
    conn: apsw.Connection, *, parent_kind: Literal["issue", "mr"], parent_id: int, now_ms: int
) -> frozenset[SourceKey]:
    """Remove everything hanging off an entity row that is being evicted; returns dirtied keys."""
    entity_type = entity_type_of(parent_kind)
    keys = delete_parent_discussions(conn, parent_kind=parent_kind, parent_id=parent_id, now_ms=now_ms)
    for select_sql, delete_sql, _, _ in _EVENT_SQL.values():
        ids = [(int(r[0]),) for r in conn.execute(select_sql, (entity_type, parent_id))]
        if ids:
            conn.executemany(delete_sql, ids)
    conn.execute(
        "DELETE FROM entity_references WHERE source_type = ? AND source_id = ?", (entity_type, parent_id)
    )
    return keys
