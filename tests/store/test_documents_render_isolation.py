"""Sources are rendered a batch at a time, yet one that cannot be rendered is parked alone.

The failures are real: a stored value the renderer cannot format (as a corrupted or hand-edited
row would hold), not a patched renderer.
"""

from __future__ import annotations

from typing import Any

import apsw
import pytest

from lore_daemon.store.dependents import replace_discussions
from lore_daemon.store.dirty import dirty_keys
from lore_daemon.store.documents import drain_dirty, regenerate_documents
from lore_daemon.store.entities import ingest_issue
from lore_daemon.store.keys import SourceKey
from lore_daemon.store.render import render_sources


def _issues_with_threads(
    conn: apsw.Connection, gl: Any, count: int
) -> tuple[list[SourceKey], list[SourceKey]]:
    """``count`` issues, each with one discussion of one note; (issue keys, discussion keys)."""
    issues: list[SourceKey] = []
    threads: list[SourceKey] = []
    with conn:
        for iid in range(1, count + 1):
            issues.append(ingest_issue(conn, gl.project_id, gl.issue(iid), now_ms=gl.NOW).key)
            written = replace_discussions(
                conn, project_id=gl.project_id, parent_kind="issue", parent_id=10_000 + iid,
                discussions=[gl.discussion(f"t{iid}", gl.note(iid, f"note {iid}"))], now_ms=gl.NOW,
            )
            threads.extend(written.touched)
    return issues, threads


def _poison(conn: apsw.Connection, issue: SourceKey, thread: SourceKey) -> None:
    """Store values the renderer cannot format: a text creation time on an issue and on a note."""
    with conn:
        conn.execute("UPDATE issues SET created_at = 'yesterday' WHERE gitlab_id = ?", (issue[1],))
        conn.execute("UPDATE notes SET created_at = 'noon' WHERE discussion_id = ?", (thread[1],))


def _documents(conn: apsw.Connection) -> set[SourceKey]:
    return {(str(t), int(i)) for t, i in conn.execute("SELECT source_type, source_id FROM documents")}


def test_sources_that_fail_to_render_are_parked_alone_and_the_rest_of_the_batch_is_written(
    store_db: apsw.Connection, gl: Any
) -> None:
    issues, threads = _issues_with_threads(store_db, gl, 6)
    _poison(store_db, issues[2], threads[4])
    with pytest.raises(TypeError):  # the batch as a whole cannot be rendered
        render_sources(store_db, issues + threads)
    with store_db:
        out = drain_dirty(store_db, now_ms=gl.NOW + 1)
    assert sorted(out.failed) == sorted([issues[2], threads[4]]) and out.processed == 12
    assert len(out.regenerated_ids) == 10
    assert _documents(store_db) == set(issues + threads) - {issues[2], threads[4]}
    assert sorted(key for key, _ in dirty_keys(store_db, limit=20)) == sorted(out.failed)
    rows = store_db.execute("SELECT source_type, source_id, attempt_count, last_error FROM dirty_sources")
    errors = {(str(t), int(i)): (n, e) for t, i, n, e in rows}
    assert errors[issues[2]][0] == 1 and errors[issues[2]][1].startswith("TypeError: ")
    assert errors[threads[4]] == (1, "ValueError: invalid literal for int() with base 10: 'noon'")
    hits = store_db.execute("SELECT count(*) FROM documents_fts WHERE documents_fts MATCH 'note'").fetchone()
    assert hits == (5,)  # the five healthy discussions are searchable


def test_a_parked_source_is_retried_then_passed_over_and_a_repaired_one_renders(
    store_db: apsw.Connection, gl: Any
) -> None:
    issues, threads = _issues_with_threads(store_db, gl, 3)
    _poison(store_db, issues[0], threads[0])
    for attempt in (1, 2):
        with store_db:
            out = drain_dirty(store_db, now_ms=gl.NOW + attempt, max_attempts=2)
        assert sorted(out.failed) == sorted([issues[0], threads[0]])
    with store_db:
        assert drain_dirty(store_db, now_ms=gl.NOW + 3, max_attempts=2).processed == 0
        repaired = gl.issue(1, updated_ms=gl.T0 + 5)  # a newer copy of the issue restores its row
        ingest_issue(store_db, gl.project_id, repaired, now_ms=gl.NOW + 4)
        out = drain_dirty(store_db, now_ms=gl.NOW + 5, max_attempts=2)
    assert out.failed == [] and len(out.regenerated_ids) == 1 and issues[0] in _documents(store_db)


def test_regenerate_documents_lets_a_render_failure_roll_back_the_callers_savepoint(
    store_db: apsw.Connection, gl: Any
) -> None:
    issues, threads = _issues_with_threads(store_db, gl, 2)
    _poison(store_db, issues[1], threads[1])
    with pytest.raises(TypeError), store_db:  # surgical sync: the target's savepoint rolls back
        regenerate_documents(store_db, issues + threads, now_ms=gl.NOW + 1)
    assert _documents(store_db) == set()
    with store_db:
        out = regenerate_documents(store_db, [issues[0], threads[0]], now_ms=gl.NOW + 2)
    assert len(out.regenerated_ids) == 2
