"""Dependent writes on a real SQLite file: discussions/notes, events, closes links, file changes."""

from __future__ import annotations

import json
from typing import Any

import apsw
import pytest

from lore_daemon.store.dependents import (
    replace_closes_issues,
    replace_discussions,
    replace_mr_diffs,
    replace_resource_events,
)
from lore_daemon.store.entities import ingest_issue, ingest_merge_request

ISSUE_ID = 10_001
MR_ID = 50_001


def count(conn: apsw.Connection, sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def parents(store_db: apsw.Connection, gl: Any) -> apsw.Connection:
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW)
        ingest_merge_request(store_db, gl.project_id, gl.mr(1), now_ms=gl.NOW)
        store_db.execute("DELETE FROM dirty_sources")
    return store_db


def refresh(conn: apsw.Connection, gl: Any, discussions: list[Any], now: int | None = None) -> Any:
    with conn:
        return replace_discussions(
            conn,
            project_id=gl.project_id,
            parent_kind="issue",
            parent_id=ISSUE_ID,
            discussions=discussions,
            now_ms=now or gl.NOW,
        )


def local_ids(conn: apsw.Connection) -> dict[str, int]:
    return {str(g)[:1]: int(i) for i, g in conn.execute("SELECT id, gitlab_id FROM discussions")}


def test_first_refresh_writes_threads_and_dirties_each(parents: apsw.Connection, gl: Any):
    threads = [
        gl.discussion("a", gl.note(1, "first"), gl.note(2, "reply", minute=1)),
        gl.discussion("b", gl.note(3)),
    ]
    out = refresh(parents, gl, threads)
    ids = local_ids(parents)
    assert (out.discussions, out.notes, out.rows, out.changed) == (2, 3, 5, True)
    assert out.touched == frozenset({("discussion", ids["a"]), ("discussion", ids["b"])})
    dirty = {(str(t), int(i)) for t, i in parents.execute("SELECT source_type, source_id FROM dirty_sources")}
    assert dirty == set(out.touched)
    assert count(parents, "SELECT count(*) FROM notes WHERE discussion_id = ?", ids["a"]) == 2


def test_unchanged_refresh_writes_and_dirties_nothing(parents: apsw.Connection, gl: Any):
    def threads() -> list[Any]:
        return [
            gl.discussion("a", gl.note(1), gl.diff_note(2, "nit", "src/app.py", 42)),
            gl.discussion("b", gl.note(3)),
        ]

    refresh(parents, gl, threads())
    with parents:
        parents.execute("DELETE FROM dirty_sources")
    before = parents.total_changes()
    out = refresh(parents, gl, threads())
    assert out.touched == frozenset() and out.changed is False
    assert parents.total_changes() == before


def test_changed_refresh_keeps_ids_deletes_vanished_and_dirties_only_changes(
    parents: apsw.Connection, gl: Any
):
    refresh(
        parents,
        gl,
        [
            gl.discussion("a", gl.note(1, "old text"), gl.note(2)),
            gl.discussion("b", gl.note(3)),
            gl.discussion("s", gl.note(4, "same")),
        ],
    )
    before = local_ids(parents)
    out = refresh(
        parents,
        gl,
        [
            gl.discussion("a", gl.note(1, "edited text")),  # note 2 deleted, note 1 edited
            gl.discussion("s", gl.note(4, "same")),  # untouched
            gl.discussion("c", gl.note(5)),  # new
        ],
    )
    after = local_ids(parents)
    assert after["a"] == before["a"] and after["s"] == before["s"] and "b" not in after
    assert out.touched == frozenset(
        {("discussion", after["a"]), ("discussion", before["b"]), ("discussion", after["c"])}
    )
    assert [r[0] for r in parents.execute("SELECT gitlab_id FROM notes ORDER BY gitlab_id")] == [1, 4, 5]
    assert parents.execute("SELECT body FROM notes WHERE gitlab_id = 1").fetchone() == ("edited text",)


def test_diff_note_position_and_system_flag_are_kept(parents: apsw.Connection, gl: Any):
    refresh(
        parents,
        gl,
        [
            gl.discussion("a", gl.diff_note(1, "typo here", "src/app.py", 42)),
            gl.discussion("b", gl.note(2, "changed the description", system=True), individual=True),
        ],
    )
    row = parents.execute(
        "SELECT note_type, position_old_path, position_new_path, position_old_line, position_new_line,"
        " position_json, resolvable FROM notes WHERE gitlab_id = 1"
    ).fetchone()
    assert row[:5] == ("DiffNote", "src/app.py", "src/app.py", None, 42) and row[6] == 1
    position = json.loads(row[5])
    assert position["head_sha"] == "d" * 40 and position["line_range"]["start"]["new_line"] == 42
    assert parents.execute("SELECT system FROM notes WHERE gitlab_id = 2").fetchone() == (1,)
    assert count(parents, "SELECT individual_note FROM discussions WHERE gitlab_id LIKE 'b%'") == 1


def test_refresh_to_empty_deletes_every_thread(parents: apsw.Connection, gl: Any):
    refresh(parents, gl, [gl.discussion("a", gl.note(1))])
    out = refresh(parents, gl, [])
    assert len(out.touched) == 1 and count(parents, "SELECT count(*) FROM notes") == 0


def events(conn: apsw.Connection, gl: Any, parent_kind: str, parent_id: int, **kinds: list[Any]) -> Any:
    with conn:
        return replace_resource_events(
            conn,
            project_id=gl.project_id,
            parent_kind=parent_kind,  # type: ignore[arg-type]
            parent_id=parent_id,
            state=kinds.get("state", []),
            label=kinds.get("label", []),
            milestone=kinds.get("milestone", []),
        )


def test_events_full_replace_per_parent_without_dirtying(parents: apsw.Connection, gl: Any):
    events(parents, gl, "mr", MR_ID, state=[gl.state_event(900)])  # another parent's event
    first = events(
        parents,
        gl,
        "issue",
        ISSUE_ID,
        state=[gl.state_event(1), gl.state_event(2, "reopened")],
        label=[gl.label_event(3), gl.label_event(3)],  # a page overlap repeats an event
        milestone=[gl.milestone_event(4)],
    )
    assert (first.rows, first.changed, first.touched) == (4, True, frozenset())
    second = events(
        parents, gl, "issue", ISSUE_ID, state=[gl.state_event(2, "reopened")], label=[gl.label_event(5)]
    )
    assert second.rows == 2 and second.changed
    assert [r[0] for r in parents.execute("SELECT gitlab_id FROM resource_state_events ORDER BY 1")] == [
        2,
        900,
    ]
    assert [r[0] for r in parents.execute("SELECT gitlab_id FROM resource_label_events")] == [5]
    assert count(parents, "SELECT count(*) FROM resource_milestone_events") == 0
    assert count(parents, "SELECT count(*) FROM dirty_sources") == 0
    again = events(
        parents, gl, "issue", ISSUE_ID, state=[gl.state_event(2, "reopened")], label=[gl.label_event(5)]
    )
    assert again.changed is False


def closes(conn: apsw.Connection, gl: Any, items: list[Any]) -> Any:
    with conn:
        return replace_closes_issues(conn, project_id=gl.project_id, mr_id=MR_ID, issues=items, now_ms=gl.NOW)


def test_closes_links_unique_replaced_and_dirty_the_mr(parents: apsw.Connection, gl: Any):
    first = closes(parents, gl, gl.closes(1, 2, 2))
    assert first.rows == 2 and first.touched == frozenset({("merge_request", MR_ID)})
    rows = parents.execute(
        "SELECT source_type, source_id, target_type, target_id, target_iid, reference_type"
        " FROM entity_references ORDER BY target_id"
    ).fetchall()
    assert rows == [
        ("merge_request", MR_ID, "issue", 10_001, 1, "closes"),
        ("merge_request", MR_ID, "issue", 10_002, 2, "closes"),
    ]
    with parents:
        parents.execute("DELETE FROM dirty_sources")
    same = closes(parents, gl, gl.closes(2, 1))
    assert (same.changed, same.touched) == (False, frozenset())
    assert count(parents, "SELECT count(*) FROM dirty_sources") == 0
    fewer = closes(parents, gl, gl.closes(2))
    assert fewer.changed and [r[0] for r in parents.execute("SELECT target_iid FROM entity_references")] == [
        2
    ]


def test_mr_diffs_full_replace(parents: apsw.Connection, gl: Any):
    three = [
        gl.diff("a.py"), gl.diff("old.py", "new.py", renamed_file=True), gl.diff("gone.py", deleted_file=True)
    ]
    with parents:
        first = replace_mr_diffs(
            parents,
            mr_id=MR_ID,
            diffs=three,
            now_ms=gl.NOW,
        )
    assert first.rows == 3 and first.touched == frozenset({("merge_request", MR_ID)})
    assert parents.execute(
        "SELECT renamed_file FROM mr_file_changes WHERE new_path = 'new.py'"
    ).fetchone() == (1,)
    with parents:
        same = replace_mr_diffs(
            parents,
            mr_id=MR_ID,
            diffs=three,
        )
        second = replace_mr_diffs(
            parents, mr_id=MR_ID, diffs=[gl.diff("a.py"), gl.diff("b.py", new_file=True)]
        )
    assert same.changed is False
    assert second.changed and second.rows == 2
    paths = [r[0] for r in parents.execute("SELECT new_path FROM mr_file_changes ORDER BY new_path")]
    assert paths == ["a.py", "b.py"]


def test_events_of_several_parents_in_one_call_match_parent_by_parent(parents: apsw.Connection, gl: Any):
    from lore_daemon.store.dependents import ParentEvents, replace_events_many

    events(parents, gl, "issue", ISSUE_ID, state=[gl.state_event(1)], label=[gl.label_event(2)])
    events(parents, gl, "mr", MR_ID, milestone=[gl.milestone_event(3)])
    with parents:
        out = replace_events_many(parents, [
            # the issue: event 1 unchanged, label 2 gone, milestone 4 new
            ParentEvents(gl.project_id, "issue", ISSUE_ID, [gl.state_event(1)], [], [gl.milestone_event(4)]),
            # the MR: exactly what it has: no write at all
            ParentEvents(gl.project_id, "mr", MR_ID, [], [], [gl.milestone_event(3)]),
        ])
    assert [(w.rows, w.changed) for w in out] == [(2, True), (1, False)]
    stored = parents.execute(
        "SELECT 'state', gitlab_id, entity_id FROM resource_state_events UNION ALL "
        "SELECT 'label', gitlab_id, entity_id FROM resource_label_events UNION ALL "
        "SELECT 'milestone', gitlab_id, entity_id FROM resource_milestone_events ORDER BY 1, 2"
    ).fetchall()
    assert stored == [("milestone", 3, MR_ID), ("milestone", 4, ISSUE_ID), ("state", 1, ISSUE_ID)]
    with parents:  # the same again, together: nothing changes for either
        again = replace_events_many(parents, [
            ParentEvents(gl.project_id, "issue", ISSUE_ID, [gl.state_event(1)], [], [gl.milestone_event(4)]),
            ParentEvents(gl.project_id, "mr", MR_ID, [], [], [gl.milestone_event(3)]),
        ])
    assert [w.changed for w in again] == [False, False]
