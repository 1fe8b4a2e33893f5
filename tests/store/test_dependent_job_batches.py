"""Dependent jobs written in shared transactions: each job is still atomic on its own.

The drain phase writes several completed jobs per commit, each inside its own savepoint. These
tests drive its writer function on a real database file with real claimed jobs.
"""

from __future__ import annotations

from typing import Any, cast

import apsw
import pytest

from lore_daemon.errors import GitLabError
from lore_daemon.store import discussions
from lore_daemon.store.entities import ingest_issue
from lore_daemon.sync import drain_phase
from lore_daemon.sync.context import RunCancelled, RunContext
from lore_daemon.sync.dependents import FetchedDependents, ResourceEvents
from lore_daemon.tuning import DEFAULT_TUNING, Tuning

OWNER = "test-owner"
ISSUES = 6  # two jobs each: discussions, resource_events


def _claimed_and_fetched(
    conn: apsw.Connection, gl: Any, errors: dict[int, GitLabError] | None = None
) -> list[tuple[drain_phase.EntityWork, FetchedDependents]]:
    with conn:
        for iid in range(1, ISSUES + 1):
            ingest_issue(conn, gl.project_id, gl.issue(iid), now_ms=gl.NOW)
    claimed = drain_phase._claim(conn, OWNER, 200, 60_000)
    pairs = []
    for work in claimed.work:
        fetched = FetchedDependents(kind="issue", iid=work.iid, project_id=work.project_id)
        fetched.results["discussions"] = [gl.discussion(f"d{work.iid}", gl.note(work.iid * 10))]
        if errors and work.iid in errors:
            fetched.errors["events"] = errors[work.iid]
        else:
            fetched.results["events"] = ResourceEvents([], [], [])
        pairs.append((work, fetched))
    return pairs


def _context(tuning: Tuning = DEFAULT_TUNING) -> RunContext:
    # The writer function uses only the cancel flag and the tuning: no engine is needed for that.
    return RunContext(cast(Any, None), mode="standard", progress=lambda note: None, tuning=tuning)


def _queued(conn: apsw.Connection) -> list[tuple[int, str, int]]:
    return [
        (int(iid), str(job_type), int(attempts))
        for iid, job_type, attempts in conn.execute(
            "SELECT entity_iid, job_type, attempts FROM pending_dependent_fetches"
            " ORDER BY entity_iid, job_type"
        )
    ]


def _discussion_parents(conn: apsw.Connection) -> list[int]:
    sql = "SELECT i.iid FROM discussions AS d JOIN issues AS i ON i.gitlab_id = d.noteable_id ORDER BY i.iid"
    return [int(row[0]) for row in conn.execute(sql)]


def test_jobs_share_transactions_and_a_failed_fetch_backs_off_alone(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
):
    boom = GitLabError("upstream broke", "GITLAB_UNAVAILABLE", http_status=503)
    pairs = _claimed_and_fetched(store_db, gl, errors={3: boom})
    ctx = _context(Tuning(jobs_per_transaction=5))  # 12 jobs: three transactions
    out = drain_phase._write_results(store_db, ctx, OWNER, pairs)
    assert out.done == 2 * ISSUES - 1 and [(f.iid, f.stage) for f in out.failed] == [(3, "events")]
    assert out.counts.discussions == ISSUES and out.counts.notes == ISSUES
    assert _queued(store_db) == [(3, "resource_events", 1)]
    assert _discussion_parents(store_db) == list(range(1, ISSUES + 1))


def test_a_job_that_raises_rolls_back_alone_and_the_jobs_before_it_commit(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
):
    pairs = _claimed_and_fetched(store_db, gl)
    real = discussions.note_row
    group_attempts = 0
    real_group = drain_phase.write_group

    def counting_group(*args: Any, **kwargs: Any) -> Any:
        nonlocal group_attempts
        group_attempts += 1
        return real_group(*args, **kwargs)

    def poisoned(note: Any) -> Any:
        if note.id == 40:  # issue 4's only note: its discussions job (job 7) breaks, in any path
            raise RuntimeError("bug in job 7")
        return real(note)

    monkeypatch.setattr(discussions, "note_row", poisoned)
    monkeypatch.setattr(drain_phase, "write_group", counting_group)
    with pytest.raises(RuntimeError, match="bug in job 7"):
        drain_phase._write_results(store_db, _context(), OWNER, pairs)
    # The group (all 12 jobs) rolled back whole, then went job by job: jobs 1-6 (issues 1-3)
    # committed; job 7 (issue 4's discussions) left nothing behind; 8-12 never ran.
    assert group_attempts == 1
    assert _discussion_parents(store_db) == [1, 2, 3]
    assert [iid for iid, _, _ in _queued(store_db)] == [4, 4, 5, 5, 6, 6]
    watermark = store_db.execute("SELECT discussions_synced_for_updated_at FROM issues WHERE iid = 4")
    assert watermark.fetchone() == (None,)
    assert not store_db.in_transaction


def test_a_group_is_written_in_a_handful_of_statements_with_the_same_outcome(
    store_db: apsw.Connection, gl: Any
):
    pairs = _claimed_and_fetched(store_db, gl)
    statements: list[str] = []
    store_db.set_profile(lambda sql, _ns: statements.append(sql))
    out = drain_phase._write_results(store_db, _context(), OWNER, pairs)
    store_db.set_profile(None)
    assert out.done == 2 * ISSUES and not out.failed
    assert out.counts.discussions == ISSUES and out.counts.notes == ISSUES
    assert _queued(store_db) == [] and _discussion_parents(store_db) == list(range(1, ISSUES + 1))
    # One multi-row upsert each for the 6 parents' discussions and notes (multirow.py splits 6
    # rows into statements of 4 and 2), one job delete, no per-job savepoint.
    chunks = bin(ISSUES).count("1")
    assert sum(s.startswith("INSERT INTO discussions") for s in statements) == chunks
    assert sum(s.startswith("INSERT INTO notes") for s in statements) == chunks
    assert sum("DELETE FROM pending_dependent_fetches" in s for s in statements) == 1
    assert not any("SAVEPOINT" in s for s in statements)


def test_cancellation_commits_the_finished_groups_and_stops_before_the_next(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
):
    pairs = _claimed_and_fetched(store_db, gl)
    ctx = _context(Tuning(jobs_per_transaction=4))  # 12 jobs: groups of 4
    real = drain_phase.write_group
    calls = 0

    def cancel_during_the_second(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            ctx.cancel_event.set()  # seen before the third group
        return real(*args, **kwargs)

    monkeypatch.setattr(drain_phase, "write_group", cancel_during_the_second)
    with pytest.raises(RunCancelled):
        drain_phase._write_results(store_db, ctx, OWNER, pairs)
    assert calls == 2 and len(_queued(store_db)) == 2 * ISSUES - 8
    assert store_db.execute("SELECT count(*) FROM discussions").fetchone() == (4,)  # issues 1-4
    assert not store_db.in_transaction
