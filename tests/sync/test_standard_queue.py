"""The cursor and watermark rules that keep a standard sync minimal and never lossy.

* GitLab lists ``updated_at ASC`` but breaks ties ``id DESC``: the persisted cursor only ever
  covers complete ``updated_at`` groups, so an interrupted walk loses nothing.
* A claimed job whose watermark already reached its target (or whose parent is gone) is completed
  without a request; a job for a newer parent version is fetched.
"""

from __future__ import annotations

from pathlib import Path

from lore_daemon import protocol
from lore_daemon.sim import SimServer
from lore_daemon.store.cursors import Cursor
from lore_daemon.sync.ingest_phase import CursorWalk
from lore_daemon.sync.standard import run_standard_sync
from tests.support.engine import Progress

from .conftest import EngineFactory
from .support import PROJECT, assert_matches_truth, connect, scalar

# (updated_at, id) in GitLab's listing order: updated_at ascending, ties by id descending.
LISTING = [(10, 5), (10, 3), (11, 9), (11, 7), (11, 2), (12, 1)]


def test_cursor_advances_only_over_complete_updated_at_groups() -> None:
    walk = CursorWalk(start=None)
    safe = [walk.step(updated, gitlab_id) for updated, gitlab_id in LISTING]
    assert safe == [None, None, Cursor(10, 5), None, None, Cursor(11, 9)]
    assert walk.final() == Cursor(12, 1)


def test_a_walk_interrupted_inside_a_tie_group_loses_nothing() -> None:
    first = CursorWalk(start=None)
    persisted = None
    for updated, gitlab_id in LISTING[:4]:  # interrupted after (11, 7): (11, 2) never committed
        persisted = first.step(updated, gitlab_id) or persisted
    assert persisted == Cursor(10, 5)

    second = CursorWalk(start=persisted)
    replayed = [item for item in LISTING if not second.covered(*item)]
    assert replayed == [(11, 9), (11, 7), (11, 2), (12, 1)]  # (11, 2) is not skipped


def _enqueue(db: Path, rows: list[tuple[object, ...]]) -> None:
    conn = connect(db)
    with conn:
        conn.executemany(
            "INSERT INTO pending_dependent_fetches (project_id, entity_type, entity_iid, entity_id, "
            "job_type, target_updated_at, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
            rows,
        )
    conn.close()


async def test_jobs_already_satisfied_or_orphaned_are_completed_without_requests(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    first = await run_standard_sync(make_engine(), protocol.SyncParams(), Progress())
    assert first.status == "succeeded"
    issue = connect(db_path).execute(
        "SELECT gitlab_id, iid, updated_at, project_id FROM issues WHERE iid = 5"
    ).fetchone()
    gitlab_id, iid, updated_at, project_id = issue
    _enqueue(db_path, [
        (project_id, "issue", iid, gitlab_id, "discussions", updated_at),  # watermark already there
        (project_id, "issue", 9_999, 424_242, "resource_events", updated_at),  # no such parent
    ])
    sim.control.clear_log()

    again = await run_standard_sync(make_engine(), protocol.SyncParams(), Progress())

    assert again.status == "succeeded"
    assert again.counters.dependent_jobs_done == 2
    assert scalar(db_path, "SELECT count(*) FROM pending_dependent_fetches") == 0
    assert not [e for e in sim.control.log() if "/issues/" in e["path"]]


async def test_a_job_for_a_newer_parent_version_is_fetched(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    await run_standard_sync(make_engine(), protocol.SyncParams(), Progress())
    gitlab_id, iid, updated_at, project_id = connect(db_path).execute(
        "SELECT gitlab_id, iid, updated_at, project_id FROM issues WHERE iid = 7"
    ).fetchone()
    conn = connect(db_path)
    with conn:  # as if the dependents were synced for an older version of the issue
        conn.execute("UPDATE issues SET discussions_synced_for_updated_at = ? WHERE gitlab_id = ?",
                     (updated_at - 1, gitlab_id))
    conn.close()
    _enqueue(db_path, [(project_id, "issue", iid, gitlab_id, "discussions", updated_at)])
    sim.control.clear_log()

    again = await run_standard_sync(make_engine(), protocol.SyncParams(), Progress())

    assert again.status == "succeeded" and again.counters.dependent_jobs_done == 1
    assert [e["path"] for e in sim.control.log() if "/issues/" in e["path"]] == [
        f"/api/v4/projects/{project_id}/issues/{iid}/discussions"
    ]
    assert scalar(db_path, "SELECT discussions_synced_for_updated_at FROM issues WHERE gitlab_id = ?",
                  gitlab_id) == updated_at
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=5)
