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
import msgspec

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
from lore_daemon.store.upsert import Upsert
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


# Events are replaced whole; the rows go in as multi-row statements (store/multirow.py).
_EVENT_COLUMNS: Final = ("gitlab_id", "project_id", "entity_type", "entity_id", "user_id", "username",
                         "created_at")
_EVENT_UPSERTS: Final = {
    "state": Upsert(
        "resource_state_events",
        (*_EVENT_COLUMNS, "state", "source_commit", "source_merge_request_id"),
        key=("gitlab_id",),
        only_if_changed=True,
    ),
    "label": Upsert(
        "resource_label_events",
        (*_EVENT_COLUMNS, "action", "label_id", "label_name", "label_color"),
        key=("gitlab_id",),
        only_if_changed=True,
    ),
    "milestone": Upsert(
        "resource_milestone_events",
        (*_EVENT_COLUMNS, "action", "milestone_id", "milestone_title"),
        key=("gitlab_id",),
        only_if_changed=True,
    ),
}
# (SELECT existing ids, DELETE one, INSERT head, ON CONFLICT tail) per event kind.
_EVENT_SQL: Final = {
    "state": (
        "SELECT gitlab_id FROM resource_state_events WHERE entity_type = ? AND entity_id = ?",
        "DELETE FROM resource_state_events WHERE gitlab_id = ?",
        _EVENT_UPSERTS["state"].head,
        _EVENT_UPSERTS["state"].tail,
    ),
    "label": (
        "SELECT gitlab_id FROM resource_label_events WHERE entity_type = ? AND entity_id = ?",
        "DELETE FROM resource_label_events WHERE gitlab_id = ?",
        _EVENT_UPSERTS["label"].head,
        _EVENT_UPSERTS["label"].tail,
    ),
    "milestone": (
        "SELECT gitlab_id FROM resource_milestone_events WHERE entity_type = ? AND entity_id = ?",
        "DELETE FROM resource_milestone_events WHERE gitlab_id = ?",
        _EVENT_UPSERTS["milestone"].head,
        _EVENT_UPSERTS["milestone"].tail,
    ),
}


@dataclass(frozen=True, slots=True)
class ParentEvents:
    """One parent's complete resource events, as GitLab sent them."""

    project_id: int
    parent_kind: Literal["issue", "mr"]
    parent_id: int
    state: list[StateEvent]
    label: list[LabelEvent]
    milestone: list[MilestoneEvent]


# Per event kind: (SELECT the stored ids of a list of parents, the ON CONFLICT tail that also
# RETURNs the parent of every row actually written). DELETE and INSERT head as in _EVENT_SQL.
_EVENTS_MANY_SQL: Final = {
    "state": (
        "SELECT entity_id, gitlab_id FROM resource_state_events"
        " WHERE entity_type = ?1 AND entity_id IN (SELECT value FROM json_each(?2))",
        _EVENT_UPSERTS["state"].tail + " RETURNING entity_type, entity_id",
    ),
    "label": (
        "SELECT entity_id, gitlab_id FROM resource_label_events"
        " WHERE entity_type = ?1 AND entity_id IN (SELECT value FROM json_each(?2))",
        _EVENT_UPSERTS["label"].tail + " RETURNING entity_type, entity_id",
    ),
    "milestone": (
        "SELECT entity_id, gitlab_id FROM resource_milestone_events"
        " WHERE entity_type = ?1 AND entity_id IN (SELECT value FROM json_each(?2))",
        _EVENT_UPSERTS["milestone"].tail + " RETURNING entity_type, entity_id",
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
    parent = ParentEvents(project_id, parent_kind, parent_id, state, label, milestone)
    return replace_events_many(conn, [parent])[0]


def _event_rows(parent: ParentEvents) -> dict[str, dict[int, tuple[object, ...]]]:
    """Stored rows per kind, keyed by event id: a repeated event (page overlap) is stored once."""
    head = (parent.project_id, entity_type_of(parent.parent_kind), parent.parent_id)

    def common(event: StateEvent | LabelEvent | MilestoneEvent) -> tuple[object, ...]:
        user = event.user
        return (event.id, *head, user.id if user else None, user.username if user else None,
                iso_to_ms(event.created_at))

    return {
        "state": {
            e.id: (*common(e), e.state, e.source_commit, e.source_merge_request_id) for e in parent.state
        },
        "label": {
            e.id: (*common(e), e.action, e.label.id if e.label else None,
                   e.label.name if e.label else None, e.label.color if e.label else None)
            for e in parent.label
        },
        "milestone": {
            e.id: (*common(e), e.action, e.milestone.id if e.milestone else None,
                   e.milestone.title if e.milestone else None)
            for e in parent.milestone
        },
    }


def replace_events_many(conn: apsw.Connection, parents: list[ParentEvents]) -> list[DependentWrite]:
    """Full refresh of several parents' events at once: per kind, one read of what is stored, one
    delete of what is gone, one multi-row upsert (whose RETURNING says which parents changed)."""
    rows = [_event_rows(parent) for parent in parents]
    index_of: dict[tuple[str, int], int] = {
        (entity_type_of(p.parent_kind), p.parent_id): i for i, p in enumerate(parents)
    }
    changed = [False] * len(parents)
    for kind, (select_many, on_conflict) in _EVENTS_MANY_SQL.items():
        _, delete_sql, insert_head, _ = _EVENT_SQL[kind]
        existing: dict[tuple[str, int], set[int]] = {}
        for entity_type in {key[0] for key in index_of}:
            ids = msgspec.json.encode([pid for etype, pid in index_of if etype == entity_type])
            for entity_id, gitlab_id in conn.execute(select_many, (entity_type, ids)):
                existing.setdefault((entity_type, int(entity_id)), set()).add(int(gitlab_id))
        gone: list[tuple[int]] = []
        for key, stored in existing.items():
            left = sorted(stored - rows[index_of[key]][kind].keys())
            if left:
                gone.extend((gitlab_id,) for gitlab_id in left)
                changed[index_of[key]] = True
        if gone:
            conn.executemany(delete_sql, gone)
        upserts = [row for parent_rows in rows for row in parent_rows[kind].values()]
        for entity_type, entity_id in insert_rows(conn, insert_head, upserts, on_conflict):
            changed[index_of[(str(entity_type), int(entity_id))]] = True
    return [
        DependentWrite(frozenset(), sum(len(by_id) for by_id in parent_rows.values()), wrote)
        for parent_rows, wrote in zip(rows, changed, strict=True)
    ]


_UPSERT_CLOSES = Upsert(
    "entity_references",
    ("project_id", "source_type", "source_id", "target_type", "target_id", "target_project_id",
     "target_iid", "reference_type"),
    key=("source_type", "source_id", "target_type", "target_id", "reference_type"),
    only_if_changed=True,
).sql


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
            [(project_id, "merge_request", mr_id, "issue", i.id, i.project_id, i.iid, "closes")
             for i in unique.values()],
        )
    return _dirty_mr_if_changed(conn, mr_id, before, len(unique), now_ms)


_UPSERT_FILE = Upsert(
    "mr_file_changes",
    ("merge_request_id", "old_path", "new_path", "a_mode", "b_mode", "new_file", "renamed_file",
     "deleted_file"),
    key=("merge_request_id", "old_path", "new_path"),
    only_if_changed=True,
).sql


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
