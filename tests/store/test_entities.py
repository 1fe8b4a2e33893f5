"""Issue/MR ingest on a real SQLite file: write rules, stale protection, dedup, enqueue, dirtying."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import apsw
import pytest

from lore_daemon.store.dependents import replace_discussions, set_watermark
from lore_daemon.store.entities import (
    ingest_issue,
    ingest_merge_request,
    local_entity_state,
    local_states_by_iid,
    upsert_project,
)


def count(conn: apsw.Connection, sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()
    return int(row[0]) if row else 0


def jobs(conn: apsw.Connection) -> list[tuple[str, str, int, int]]:
    return [
        (str(r[0]), str(r[1]), int(r[2]), int(r[3]))
        for r in conn.execute(
            "SELECT entity_type, job_type, entity_iid, target_updated_at FROM pending_dependent_fetches"
            " ORDER BY entity_type, entity_iid, job_type"
        )
    ]


def test_new_issue_is_written_with_links_users_payload_dirty_and_jobs(store_db: apsw.Connection, gl: Any):
    fetched = gl.issue(1, labels=["bug", "ui"])
    with store_db:
        out = ingest_issue(store_db, gl.project_id, fetched, now_ms=gl.NOW)
    assert (out.status, out.kind, out.iid, out.gitlab_id) == ("ingested", "issue", 1, 10_001)
    assert out.key == ("issue", 10_001) and out.touched == frozenset({("issue", 10_001)})
    row = store_db.execute(
        "SELECT title, state, author_username, updated_at, last_seen_at, raw_payload_id FROM issues"
    ).fetchone()
    assert row[:5] == ("Issue 1", "opened", "bob", gl.T0, gl.NOW)
    sha, payload = store_db.execute(
        "SELECT sha256, payload FROM raw_payloads WHERE id = ?", (row[5],)
    ).fetchone()
    assert sha == hashlib.sha256(fetched.raw).hexdigest() and payload == fetched.raw.decode()
    assert [r[0] for r in store_db.execute("SELECT label FROM issue_labels ORDER BY label")] == ["bug", "ui"]
    assert count(store_db, "SELECT count(*) FROM issue_assignees WHERE user_id = 1") == 1
    assert {r[0] for r in store_db.execute("SELECT username FROM users")} == {"alice", "bob"}
    assert store_db.execute("SELECT source_type, source_id, queued_at FROM dirty_sources").fetchall() == [
        ("issue", 10_001, gl.NOW)
    ]
    assert jobs(store_db) == [("issue", "discussions", 1, gl.T0), ("issue", "resource_events", 1, gl.T0)]


def test_identical_reingest_is_unchanged_with_zero_writes(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW)
    before = store_db.total_changes()
    with store_db:
        out = ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW + 5)
    assert out.status == "unchanged" and out.touched == frozenset()
    assert store_db.total_changes() == before
    assert count(store_db, "SELECT last_seen_at FROM issues") == gl.NOW  # not re-stamped
    assert count(store_db, "SELECT count(*) FROM raw_payloads") == 1


def test_update_replaces_links_and_supersedes_raw_payload(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1, labels=["bug", "ui"]), now_ms=gl.NOW)
    newer = gl.issue(
        1,
        updated_ms=gl.T0 + 60_000,
        labels=["docs"],
        assignees=[],
        title="Renamed",
        milestone={"id": 5, "iid": 1, "project_id": gl.project_id, "title": "v2", "state": "active"},
    )
    with store_db:
        out = ingest_issue(store_db, gl.project_id, newer, now_ms=gl.NOW + 1)
    assert out.status == "ingested" and out.updated_at_ms == gl.T0 + 60_000
    assert [r[0] for r in store_db.execute("SELECT label FROM issue_labels")] == ["docs"]
    assert count(store_db, "SELECT count(*) FROM issue_assignees") == 0
    assert store_db.execute("SELECT title, milestone_id FROM issues").fetchone() == ("Renamed", 5)
    assert store_db.execute("SELECT sha256 FROM raw_payloads").fetchall() == [
        (hashlib.sha256(newer.raw).hexdigest(),)
    ]


def test_same_bytes_are_stored_once(store_db: apsw.Connection, gl: Any):
    with store_db:
        for _ in range(3):
            ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW)
        ingest_issue(store_db, gl.project_id, gl.issue(2), now_ms=gl.NOW)
    assert count(store_db, "SELECT count(*) FROM raw_payloads") == 2
    assert count(store_db, "SELECT count(DISTINCT raw_payload_id) FROM issues") == 2


def test_newer_local_row_is_never_regressed(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1, updated_ms=gl.T0 + 10, title="new"), now_ms=gl.NOW)
    before = store_db.total_changes()
    with store_db:
        out = ingest_issue(
            store_db, gl.project_id, gl.issue(1, updated_ms=gl.T0, title="old"), now_ms=gl.NOW + 1
        )
    assert out.status == "skipped_stale" and out.touched == frozenset()
    assert store_db.total_changes() == before
    assert store_db.execute("SELECT title FROM issues").fetchone() == ("new",)


def test_equal_updated_at_with_newer_last_seen_than_guard_is_skipped(store_db: apsw.Connection, gl: Any):
    preflight_started = gl.NOW - 50
    with store_db:  # a concurrent sync wrote a fresher fetch after our preflight began
        ingest_issue(store_db, gl.project_id, gl.issue(1, title="fresh"), now_ms=gl.NOW)
        out = ingest_issue(
            store_db,
            gl.project_id,
            gl.issue(1, title="preflight copy"),
            now_ms=gl.NOW + 1,
            stale_guard_ms=preflight_started,
        )
    assert out.status == "skipped_stale"
    assert store_db.execute("SELECT title, last_seen_at FROM issues").fetchone() == ("fresh", gl.NOW)


def test_equal_updated_at_with_older_last_seen_than_guard_is_ingested(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1, title="before"), now_ms=gl.NOW)
        out = ingest_issue(
            store_db,
            gl.project_id,
            gl.issue(1, title="after"),
            now_ms=gl.NOW + 100,
            stale_guard_ms=gl.NOW + 10,
        )
    assert out.status == "ingested"
    assert store_db.execute("SELECT title, last_seen_at FROM issues").fetchone() == ("after", gl.NOW + 100)


def test_enqueue_is_idempotent_and_watermark_aware(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW)
        ingest_issue(store_db, gl.project_id, gl.issue(1, title="again"), now_ms=gl.NOW)  # same updated_at
    assert len(jobs(store_db)) == 2
    with store_db:  # the discussions job completed for this version
        store_db.execute("DELETE FROM pending_dependent_fetches")
        set_watermark(store_db, "issue", 10_001, "discussions", gl.T0)
        out = ingest_issue(store_db, gl.project_id, gl.issue(1, title="again"), now_ms=gl.NOW)
    assert out.status == "unchanged"
    assert jobs(store_db) == [("issue", "resource_events", 1, gl.T0)]  # only the dependent that is behind
    with store_db:
        store_db.execute("DELETE FROM pending_dependent_fetches")
        set_watermark(store_db, "issue", 10_001, "events", gl.T0)
    before = store_db.total_changes()
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1, title="again"), now_ms=gl.NOW)
    assert jobs(store_db) == [] and store_db.total_changes() == before
    with store_db:  # a newer version puts both jobs back, targeting it
        ingest_issue(store_db, gl.project_id, gl.issue(1, updated_ms=gl.T0 + 9), now_ms=gl.NOW)
    assert jobs(store_db) == [
        ("issue", "discussions", 1, gl.T0 + 9),
        ("issue", "resource_events", 1, gl.T0 + 9),
    ]


def test_enqueue_can_be_turned_off(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_merge_request(store_db, gl.project_id, gl.mr(1), now_ms=gl.NOW, enqueue_dependents=False)
    assert jobs(store_db) == []


def test_merge_request_links_and_four_jobs(store_db: apsw.Connection, gl: Any):
    fetched = gl.mr(7, draft=True, merged_by={"id": 4, "username": "dave"})
    with store_db:
        out = ingest_merge_request(store_db, gl.project_id, fetched, now_ms=gl.NOW)
    assert out.key == ("merge_request", 50_007) and out.kind == "mr"
    row = store_db.execute(
        "SELECT draft, source_branch, target_branch, merged_by_id FROM merge_requests"
    ).fetchone()
    assert row == (1, "feature-7", "main", 4)
    assert count(store_db, "SELECT count(*) FROM mr_reviewers WHERE user_id = 3") == 1
    assert count(store_db, "SELECT count(*) FROM mr_assignees WHERE user_id = 1") == 1
    assert count(store_db, "SELECT count(*) FROM users WHERE username = 'dave'") == 1
    assert [j[1] for j in jobs(store_db)] == [
        "discussions",
        "mr_closes_issues",
        "mr_diffs",
        "resource_events",
    ]


def _issue_with_a_thread(conn: apsw.Connection, gl: Any) -> Any:
    """Issue 1 (GitLab id 10_001) with one discussion; the discussion write's outcome."""
    ingest_issue(conn, gl.project_id, gl.issue(1), now_ms=gl.NOW)
    return replace_discussions(
        conn, project_id=gl.project_id, parent_kind="issue", parent_id=10_001,
        discussions=[gl.discussion("a", gl.note(1))], now_ms=gl.NOW,
    )


def test_title_change_dirties_the_parents_discussions(store_db: apsw.Connection, gl: Any):
    with store_db:
        written = _issue_with_a_thread(store_db, gl)
        store_db.execute("DELETE FROM dirty_sources")
        label_only = ingest_issue(
            store_db, gl.project_id, gl.issue(1, updated_ms=gl.T0 + 1, labels=["x"]), now_ms=gl.NOW
        )
        retitled = ingest_issue(
            store_db, gl.project_id, gl.issue(1, updated_ms=gl.T0 + 2, title="New"), now_ms=gl.NOW
        )
    assert label_only.touched == frozenset({("issue", 10_001)})
    assert retitled.touched == frozenset({("issue", 10_001)}) | written.touched


def test_recreated_iid_evicts_the_old_row_and_its_dependents(store_db: apsw.Connection, gl: Any):
    with store_db:
        old = _issue_with_a_thread(store_db, gl)
        out = ingest_issue(store_db, gl.project_id, gl.issue(1, id=99_999), now_ms=gl.NOW)
    assert out.status == "ingested"
    assert out.touched == frozenset({("issue", 99_999), ("issue", 10_001)}) | old.touched
    assert store_db.execute("SELECT gitlab_id FROM issues").fetchall() == [(99_999,)]
    assert count(store_db, "SELECT count(*) FROM discussions") == 0
    assert count(store_db, "SELECT count(*) FROM raw_payloads") == 1


def test_local_entity_state(store_db: apsw.Connection, gl: Any):
    assert local_entity_state(store_db, gl.project_id, "mr", 3) is None
    with store_db:
        ingest_merge_request(store_db, gl.project_id, gl.mr(3), now_ms=gl.NOW)
        set_watermark(store_db, "mr", 50_003, "diffs", gl.T0)
    state = local_entity_state(store_db, gl.project_id, "mr", 3)
    assert state is not None
    assert (state.gitlab_id, state.updated_at_ms, state.last_seen_at_ms, state.title) == (
        50_003,
        gl.T0,
        gl.NOW,
        "MR 3",
    )
    assert state.watermarks == {"discussions": None, "events": None, "closes_issues": None, "diffs": gl.T0}
    assert state.dependents_behind() == ["discussions", "events", "closes_issues"]


@pytest.mark.parametrize("kind", ["issue", "mr"])
def test_local_states_by_iid_match_one_by_one_without_the_payload_hash(
    store_db: apsw.Connection, gl: Any, kind: str
) -> None:
    ingest = ingest_issue if kind == "issue" else ingest_merge_request
    make = gl.issue if kind == "issue" else gl.mr
    with store_db:
        for iid in (1, 2, 5):
            ingest(store_db, gl.project_id, make(iid, updated_ms=gl.T0 + iid), now_ms=gl.NOW)
    found = local_states_by_iid(store_db, gl.project_id, kind, [1, 2, 3, 5])
    assert sorted(found) == [1, 2, 5]  # iid 3 has no row
    for iid, state in found.items():
        one = local_entity_state(store_db, gl.project_id, kind, iid)
        assert one is not None and one.raw_sha256 is not None and state.raw_sha256 is None
        assert state == dataclasses.replace(one, raw_sha256=None)
    assert local_states_by_iid(store_db, gl.project_id + 1, kind, [1, 2]) == {}  # another project


def test_watermarks_never_move_backwards(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW)
        set_watermark(store_db, "issue", 10_001, "events", gl.T0 + 5)
        set_watermark(store_db, "issue", 10_001, "events", gl.T0)
    assert count(store_db, "SELECT events_synced_for_updated_at FROM issues") == gl.T0 + 5


def test_issue_has_no_diffs_watermark(store_db: apsw.Connection, gl: Any):
    from lore_daemon.errors import LoreError

    with pytest.raises(LoreError) as err:
        set_watermark(store_db, "issue", 1, "diffs", gl.T0)
    assert err.value.code == "INTERNAL"


def test_project_path_taken_over_by_a_new_project(store_db: apsw.Connection, gl: Any):
    with store_db:
        ingest_issue(store_db, gl.project_id, gl.issue(1), now_ms=gl.NOW)
        upsert_project(store_db, gl.project(id=777), now_ms=gl.NOW)
    rows = store_db.execute(
        "SELECT gitlab_id, path_with_namespace FROM projects ORDER BY gitlab_id"
    ).fetchall()
    assert rows == [(100, "group/proj#100"), (777, "group/proj")]
