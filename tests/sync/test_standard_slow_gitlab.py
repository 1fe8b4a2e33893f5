"""A GitLab that answers too slowly cannot hold a standard sync (or its lock) hostage: a trickling
answer ends at the request's deadline, the run records it, nothing is half-written, and the next
sync completes (issue 15, item 7)."""

from __future__ import annotations

import time
from pathlib import Path

from lore_daemon import protocol
from lore_daemon.gitlab import RetryPolicy
from lore_daemon.sim import SimServer
from lore_daemon.sync.standard import run_standard_sync
from tests.support.engine import Progress

from .conftest import EngineFactory
from .support import PROJECT, assert_consistent, assert_matches_truth, connect, scalar

DEADLINE = RetryPolicy(max_attempts=3, max_elapsed_s=1.5, base_delay_s=0.01, max_delay_s=0.02, jitter=0.0)


async def test_a_trickling_dependent_ends_at_its_deadline_and_nothing_is_half_written(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    # One byte every 200 ms: httpx's per-read timeout never fires; only the deadline can end it.
    sim.control.add_fault(r"/merge_requests/3/discussions$", kind="trickle", interval_ms=200)
    engine = make_engine(retry=DEADLINE)
    started = time.monotonic()
    result = await run_standard_sync(engine, protocol.SyncParams(no_embed=True), Progress())
    took = time.monotonic() - started

    assert result.status == "partial", result.error
    assert [(f.kind, f.iid, f.stage, f.code, f.retryable) for f in result.entity_failures] == [
        ("mr", 3, "discussions", "GITLAB_UNAVAILABLE", True)
    ]
    assert "no complete answer within" in result.entity_failures[0].message
    assert took < 30  # bounded by the 1.5 s deadline (plus the rest of the sync), not by the body
    mr3 = "(SELECT gitlab_id FROM merge_requests WHERE iid = 3)"
    assert scalar(db_path, f"SELECT count(*) FROM discussions WHERE noteable_id = {mr3}") == 0
    watermark = "SELECT discussions_synced_for_updated_at FROM merge_requests WHERE iid = 3"
    assert scalar(db_path, watermark) is None
    assert scalar(db_path, "SELECT count(*) FROM app_locks") == 0
    assert_consistent(db_path)

    sim.control.clear_faults()
    conn = connect(db_path)
    with conn:  # stand-in for waiting out the queue's backoff
        conn.execute("UPDATE pending_dependent_fetches SET next_retry_at = 0 WHERE next_retry_at IS NOT NULL")
    conn.close()
    fresh = make_engine(retry=DEADLINE)
    again = await run_standard_sync(fresh, protocol.SyncParams(no_embed=True), Progress())
    assert again.status == "succeeded"
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)
