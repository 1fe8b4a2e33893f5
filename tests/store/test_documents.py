"""Documents on a real SQLite file: rendering, hash-gated writes, deletion, FTS, dirty scoping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apsw
import pytest

from lore_daemon.store.dependents import replace_closes_issues, replace_discussions, replace_mr_diffs
from lore_daemon.store.dirty import clear_dirty_if_not_newer, dirty_keys, mark_dirty
from lore_daemon.store.documents import drain_dirty, regenerate_documents
from lore_daemon.store.entities import ingest_issue, ingest_merge_request

ISSUE = ("issue", 10_001)
MR = ("merge_request", 50_001)


def fts(conn: apsw.Connection, query: str) -> list[int]:
    return [
        int(r[0])
        for r in conn.execute("SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?", (query,))
    ]


def doc(conn: apsw.Connection, key: tuple[str, int]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT id, title, content, url, project_id, generated_at FROM documents"
        " WHERE source_type = ? AND source_id = ?",
        key,
    ).fetchone()
    assert row is not None, key
    return tuple(row)


def regen(conn: apsw.Connection, keys: list[tuple[str, int]], now: int) -> Any:
    with conn:
        return regenerate_documents(conn, keys, now_ms=now)


def _threads_on_issue_1(db: apsw.Connection, gl: Any, threads: list[Any]) -> set[tuple[str, int]]:
    """Replace issue #1's discussions (one transaction); the source keys that write dirtied."""
    with db:
        written = replace_discussions(
            db, project_id=gl.project_id, parent_kind="issue", parent_id=10_001, discussions=threads,
            now_ms=gl.NOW,
        )
    return set(written.touched)


@pytest.fixture
def db(store_db: apsw.Connection, gl: Any) -> apsw.Connection:
    assignees = [{"id": 1, "username": "alice"}, {"id": 5, "username": "erin"}]
    with store_db:
        ingest_issue(
            store_db,
            gl.project_id,
            gl.issue(1, title="Login crashes on Safari", labels=["bug", "browser"], assignees=assignees),
            now_ms=gl.NOW,
        )
        ingest_merge_request(store_db, gl.project_id, gl.mr(1, title="Fix Safari login"), now_ms=gl.NOW)
    return store_db


def test_issue_document_content_url_and_fts(db: apsw.Connection, gl: Any):
    out = regen(db, [ISSUE], gl.NOW + 1)
    doc_id, title, content, url, project_id, generated_at = doc(db, ISSUE)
    assert out.regenerated_ids == [doc_id] and out.unchanged_ids == [] and out.generated_at_ms == gl.NOW + 1
    assert title == "#1 Login crashes on Safari"
    for expected in (
        "State: opened",
        "Labels: browser, bug",
        "Author: @bob",
        "Assignees: @alice, @erin",
        "Project: group/proj",
        "Body of issue 1",
    ):
        assert expected in content
    assert (url, project_id, generated_at) == (f"{gl.issue(1).item.web_url}", gl.project_id, gl.NOW + 1)
    assert fts(db, "safari") == [doc_id]


def test_unchanged_document_is_not_rewritten(db: apsw.Connection, gl: Any):
    first = regen(db, [ISSUE], gl.NOW + 1)
    before = db.total_changes()
    second = regen(db, [ISSUE, ISSUE], gl.NOW + 2)
    assert second.unchanged_ids == first.regenerated_ids and second.regenerated_ids == []
    assert db.total_changes() == before
    assert doc(db, ISSUE)[5] == gl.NOW + 1  # generated_at unchanged


def test_changed_source_updates_document_and_fts(db: apsw.Connection, gl: Any):
    (doc_id,) = regen(db, [ISSUE], gl.NOW + 1).regenerated_ids
    with db:
        ingest_issue(
            db, gl.project_id, gl.issue(1, updated_ms=gl.T0 + 5, title="Checkout hangs"), now_ms=gl.NOW
        )
    out = regen(db, [ISSUE], gl.NOW + 2)
    assert out.regenerated_ids == [doc_id]
    assert fts(db, "checkout") == [doc_id] and fts(db, "safari") == []


def test_merge_request_document_lists_people_branches_closes_and_files(db: apsw.Connection, gl: Any):
    with db:
        replace_closes_issues(db, project_id=gl.project_id, mr_id=50_001, issues=gl.closes(1), now_ms=gl.NOW)
        replace_closes_issues(
            db, project_id=gl.project_id, mr_id=50_001, issues=gl.closes(1) + gl.closes(7, project_id=555)
        )
        replace_mr_diffs(
            db, mr_id=50_001, diffs=[gl.diff("src/login.py"), gl.diff("a.txt", "b.txt", renamed_file=True)]
        )
    regen(db, [MR], gl.NOW + 1)
    _, title, content, url, _, _ = doc(db, MR)
    assert title == "!1 Fix Safari login" and url.endswith("/-/merge_requests/1")
    for expected in (
        "Reviewers: @carol",
        "Branches: feature-1 -> main",
        "Closes: #1, 555#7",
        "Files changed: (2) b.txt (renamed from a.txt), src/login.py",
    ):
        assert expected in content


def test_discussion_document_notes_diffnotes_system_and_url(db: apsw.Connection, gl: Any):
    threads = [
        gl.discussion("a", gl.note(11, "Repro on macOS"), gl.diff_note(12, "this line", "src/login.py", 42)),
        gl.discussion("b", gl.note(13, "changed the description", system=True), individual=True),
    ]
    keys = sorted(_threads_on_issue_1(db, gl, threads))
    regen(db, keys, gl.NOW + 1)
    _, title, content, url, project_id, _ = doc(db, keys[0])
    assert title == "Discussion on #1: Login crashes on Safari" and project_id == gl.project_id
    assert url == gl.issue(1).item.web_url + "#note_11"
    assert "@user2 (2023-11-14 22:13): Repro on macOS" in content
    assert "@user2 (2023-11-14 22:13) on src/login.py:42: this line" in content
    assert "[system] @user2" in doc(db, keys[1])[2]


def test_vanished_source_loses_its_document_and_fts_row(db: apsw.Connection, gl: Any):
    regen(db, list(_threads_on_issue_1(db, gl, [gl.discussion("a", gl.note(11, "zebra"))])), gl.NOW + 1)
    assert len(fts(db, "zebra")) == 1
    out = regen(db, list(_threads_on_issue_1(db, gl, [])), gl.NOW + 2)
    assert (out.deleted, out.regenerated_ids, out.processed) == (1, [], 1)
    assert fts(db, "zebra") == []


def test_clear_dirty_keeps_a_redirty_that_lands_after_generation(db: apsw.Connection, gl: Any):
    other = ("issue", 424242)
    with db:
        db.execute("DELETE FROM dirty_sources")
        mark_dirty(db, [ISSUE, MR, other], now_ms=100)
        out = regenerate_documents(db, [ISSUE, MR], now_ms=200)
        mark_dirty(db, [MR], now_ms=300)  # a concurrent writer re-dirtied the MR after generation
        cleared = clear_dirty_if_not_newer(db, [ISSUE, MR], generated_at_ms=out.generated_at_ms)
    assert cleared == 1
    assert dict(dirty_keys(db, limit=10)) == {MR: 300, other: 100}


def test_drain_dirty_goes_oldest_first_and_leaves_nothing(db: apsw.Connection, gl: Any):
    with db:
        db.execute("DELETE FROM dirty_sources")
        mark_dirty(db, [MR], now_ms=10)
        mark_dirty(db, [("issue", 999)], now_ms=20)  # a source that does not exist: just cleared
        mark_dirty(db, [ISSUE], now_ms=30)
    with db:
        first = drain_dirty(db, now_ms=gl.NOW, batch=2)
    assert first.regenerated_ids == [doc(db, MR)[0]] and first.processed == 2
    assert [k for k, _ in dirty_keys(db, limit=10)] == [ISSUE]
    batches = 1
    while True:
        with db:
            out = drain_dirty(db, now_ms=gl.NOW, batch=2)
        if out.processed == 0:
            break
        batches += 1
    assert batches == 2 and dirty_keys(db, limit=10) == []
    assert db.execute("SELECT count(*) FROM documents").fetchone() == (2,)


def test_dirty_queue_is_read_oldest_first_through_its_index(
    db: apsw.Connection, traced_plans: Callable[..., list[str]]
) -> None:
    """Each docs batch reads ``limit`` rows off the ``queued_at`` index: no scan, no sort, so a
    drain costs linear time in the queue's length (it used to scan and sort the whole queue)."""
    with db:
        db.execute("DELETE FROM dirty_sources")
        for i in range(3_000):
            mark_dirty(db, [("discussion", i)], now_ms=10_000 - i)  # newest key first
    [plan] = traced_plans(db, lambda: dirty_keys(db, limit=5, max_attempts=3))
    assert "USING INDEX dirty_sources_queued" in plan and "TEMP B-TREE" not in plan
    assert [key for key, _ in dirty_keys(db, limit=3, max_attempts=3)] == [
        ("discussion", 2_999), ("discussion", 2_998), ("discussion", 2_997)
    ]


def test_drain_dirty_parks_a_failing_source(db: apsw.Connection, gl: Any) -> None:
    with db:  # a value the renderer cannot format: rendering this issue raises
        db.execute("UPDATE issues SET created_at = 'not a time' WHERE gitlab_id = ?", (ISSUE[1],))
        db.execute("DELETE FROM dirty_sources")
        mark_dirty(db, [ISSUE, MR], now_ms=10)
    for attempt in range(1, 4):
        with db:
            out = drain_dirty(db, now_ms=gl.NOW, max_attempts=3)
        assert out.failed == [ISSUE]
        row = db.execute("SELECT attempt_count, last_error FROM dirty_sources").fetchone()
        assert row is not None and row[0] == attempt and str(row[1]).startswith("TypeError: ")
    with db:
        assert drain_dirty(db, now_ms=gl.NOW, max_attempts=3).processed == 0  # parked, not retried forever
    assert db.execute("SELECT count(*) FROM documents WHERE source_type = 'issue'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM documents WHERE source_type = 'merge_request'").fetchone() == (1,)
