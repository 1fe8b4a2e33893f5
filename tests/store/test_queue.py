"""pending_dependent_fetches on a real SQLite file: enqueue, claim, complete, fail, reclaim, release."""

from __future__ import annotations

from typing import Any

import apsw
import pytest

from lore_daemon.store.queue import (
    claim_jobs,
    complete_job,
    enqueue_job,
    fail_job,
    queue_depths,
    release_claims,
)

NOW = 1_700_000_000_000
STALE = 600_000


def enqueue(
    conn: apsw.Connection, iid: int, job_type: str = "discussions", target: int = 1, now: int = NOW
) -> None:
    with conn:
        enqueue_job(
            conn,
            project_id=100,
            entity_type="issue",
            entity_iid=iid,
            entity_id=10_000 + iid,
            job_type=job_type,
            target_updated_at=target,
            now_ms=now,
        )


def claim(conn: apsw.Connection, owner: str = "w1", now: int = NOW, limit: int = 10) -> list[Any]:
    with conn:
        return claim_jobs(conn, owner=owner, now_ms=now, limit=limit, stale_claim_ms=STALE)


def row(conn: apsw.Connection, job_id: int) -> tuple[Any, ...]:
    result = conn.execute(
        "SELECT attempts, next_retry_at, locked_at, locked_by, last_error, target_updated_at"
        " FROM pending_dependent_fetches WHERE id = ?",
        (job_id,),
    ).fetchone()
    assert result is not None
    return tuple(result)


@pytest.fixture
def db(store_db: apsw.Connection) -> apsw.Connection:
    return store_db


def test_enqueue_is_idempotent_and_only_moves_target_up(db: apsw.Connection):
    enqueue(db, 1, target=5)
    before = db.total_changes()
    enqueue(db, 1, target=5)
    enqueue(db, 1, target=3)
    assert db.total_changes() == before
    enqueue(db, 1, target=9)
    assert db.execute(
        "SELECT count(*), max(target_updated_at) FROM pending_dependent_fetches"
    ).fetchone() == (1, 9)


def test_claim_complete_deletes_the_row(db: apsw.Connection):
    enqueue(db, 1)
    enqueue(db, 2, "resource_events")
    jobs = claim(db)
    assert [(j.entity_iid, j.job_type, j.entity_type, j.attempts) for j in jobs] == [
        (1, "discussions", "issue", 0),
        (2, "resource_events", "issue", 0),
    ]
    assert claim(db, owner="w2") == []  # claimed jobs are not handed out twice
    with db:
        assert complete_job(db, jobs[0].id, owner="w1") is True
        assert complete_job(db, jobs[1].id, owner="someone-else") is False
    assert [r[0] for r in db.execute("SELECT entity_iid FROM pending_dependent_fetches")] == [2]


def test_claim_respects_limit_and_order(db: apsw.Connection):
    for iid in (3, 1, 2):
        enqueue(db, iid)
    first = claim(db, limit=2)
    assert [j.entity_iid for j in first] == [3, 1]  # oldest enqueued first
    assert [j.entity_iid for j in claim(db, limit=2)] == [2]


def test_fail_backs_off_exponentially_with_cap(db: apsw.Connection):
    enqueue(db, 1)
    waits = []
    now = NOW
    for _ in range(5):
        (job,) = claim(db, now=now)
        with db:
            fail_job(
                db,
                job.id,
                owner="w1",
                error="GITLAB_UNAVAILABLE: 503",
                now_ms=now,
                base_backoff_ms=1000,
                max_backoff_ms=6000,
            )
        attempts, next_retry, locked_at, locked_by, error, _ = row(db, job.id)
        assert (locked_at, locked_by, error) == (None, None, "GITLAB_UNAVAILABLE: 503")
        waits.append(next_retry - now)
        assert claim(db, now=next_retry - 1) == []  # not due before its backoff ends
        now = next_retry
    assert waits == [1000, 2000, 4000, 6000, 6000]
    assert attempts == 5
    assert queue_depths(db)["failed"] == 1


def test_stale_claim_is_reclaimed(db: apsw.Connection):
    enqueue(db, 1)
    (job,) = claim(db, owner="crashed")
    assert claim(db, owner="w2", now=NOW + STALE - 1) == []
    (again,) = claim(db, owner="w2", now=NOW + STALE)
    assert again.id == job.id
    with db:
        assert complete_job(db, job.id, owner="crashed") is False  # its claim was taken over
        assert complete_job(db, job.id, owner="w2") is True


def test_release_claims_unlocks_only_the_owner(db: apsw.Connection):
    enqueue(db, 1)
    enqueue(db, 2)
    claim(db, owner="w1", limit=1)
    claim(db, owner="w2", limit=1)
    with db:
        assert release_claims(db, owner="w1") == 1
    assert queue_depths(db)["locked"] == 1
    assert [j.entity_iid for j in claim(db, owner="w3")] == [1]


def test_newer_parent_version_supersedes_a_claimed_job(db: apsw.Connection):
    enqueue(db, 1, target=5)
    (job,) = claim(db)
    enqueue(db, 1, target=8, now=NOW + 10)  # the parent changed while the job was being fetched
    with db:
        assert complete_job(db, job.id, owner="w1") is False  # not deleted: the new version is still to do
    (again,) = claim(db, now=NOW + 10)
    assert (again.id, again.target_updated_at) == (job.id, 8)
    with db:
        assert complete_job(db, again.id, owner="w1") is True


def test_newer_parent_version_makes_a_backed_off_job_due_now(db: apsw.Connection):
    enqueue(db, 1, target=5)
    (job,) = claim(db)
    with db:
        fail_job(db, job.id, owner="w1", error="E", now_ms=NOW)
    assert claim(db) == []
    enqueue(db, 1, target=6)
    assert row(db, job.id)[:2] == (0, None)
    assert [j.target_updated_at for j in claim(db)] == [6]


def test_queue_depths(db: apsw.Connection):
    enqueue(db, 1)
    enqueue(db, 1, "resource_events")
    enqueue(db, 2, "mr_diffs")
    claim(db, limit=1)
    assert queue_depths(db) == {
        "discussions": 1,
        "resource_events": 1,
        "mr_closes_issues": 0,
        "mr_diffs": 1,
        "locked": 1,
        "failed": 0,
    }


def test_completing_many_jobs_looks_them_up_by_id(store_db: apsw.Connection) -> None:
    """The bulk delete must not walk the ``ready`` index (every due job) for each call."""
    from lore_daemon.store.queue import _COMPLETE_MANY

    rows = store_db.execute("EXPLAIN QUERY PLAN " + _COMPLETE_MANY, ("[1]", "o"))
    plan = " ".join(str(row[3]) for row in rows)
    assert "INTEGER PRIMARY KEY" in plan and "pending_dependent_fetches_ready" not in plan
