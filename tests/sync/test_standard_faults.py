"""Faults mid-sync end in success or a recorded failure, never a half-written item; the next sync
completes and the store equals the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from lore_daemon import protocol
from lore_daemon.gitlab._retry import RetryPolicy
from lore_daemon.sim import SimServer
from lore_daemon.sync.standard import run_standard_sync
from tests.support.engine import Progress

from .conftest import SMALL, EngineFactory
from .support import PROJECT, assert_consistent, assert_matches_truth, connect, scalar

PATIENT = RetryPolicy(max_attempts=8, max_elapsed_s=10.0, base_delay_s=0.005, max_delay_s=0.02, jitter=0.0)


def _backoff_elapsed(db: Path) -> None:
    """Stand-in for waiting out the queue's retry backoff (30 s and more): make failed jobs due."""
    conn = connect(db)
    with conn:
        conn.execute("UPDATE pending_dependent_fetches SET next_retry_at = 0 WHERE next_retry_at IS NOT NULL")
    conn.close()


async def _sync(make_engine: EngineFactory, **kw: object) -> protocol.SyncResult:
    engine = make_engine(**kw)
    return await run_standard_sync(engine, protocol.SyncParams(), Progress())


async def test_5xx_storm_on_discussions_is_partial_then_recovers(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.add_fault(r"/issues/\d+/discussions$", statuses=[502], times=100_000)

    result = await _sync(make_engine)

    assert result.status == "partial" and result.phase == "done"
    failures = result.entity_failures
    assert len(failures) == SMALL.issues == result.counters.dependent_jobs_failed
    assert {(f.kind, f.stage, f.code, f.http_status, f.retryable) for f in failures} == {
        ("issue", "discussions", "GITLAB_UNAVAILABLE", 502, True)
    }
    assert sorted(f.iid for f in failures) == list(range(1, SMALL.issues + 1))
    kinds = [a.kind for a in result.recovery_actions]
    assert kinds == ["retryFailedEntities", "retryRun"]
    assert result.recovery_actions[0].request is not None
    assert result.recovery_actions[0].request.params["issues"] == list(range(1, SMALL.issues + 1))
    # The failed stage wrote nothing and kept its job (with backoff); everything else is whole.
    assert scalar(db_path, "SELECT count(*) FROM discussions WHERE noteable_type = 'issue'") == 0
    synced = "SELECT count(*) FROM issues WHERE discussions_synced_for_updated_at IS NOT NULL"
    assert scalar(db_path, synced) == 0
    assert scalar(db_path, "SELECT count(*) FROM issues WHERE events_synced_for_updated_at IS NULL") == 0
    jobs = connect(db_path).execute(
        "SELECT job_type, attempts, next_retry_at > 0, last_error FROM pending_dependent_fetches"
    ).fetchall()
    assert len(jobs) == SMALL.issues
    assert all(j[:3] == ("discussions", 1, 1) and j[3].startswith("GITLAB_UNAVAILABLE") for j in jobs)
    run = connect(db_path).execute(
        "SELECT status, phase, failures_json FROM sync_runs WHERE run_id = ?", (result.run_id,)
    ).fetchone()
    assert run[:2] == ("partial", "done") and "GITLAB_UNAVAILABLE" in run[2]
    assert_consistent(db_path)

    sim.control.clear_faults()
    _backoff_elapsed(db_path)
    again = await _sync(make_engine)
    assert again.status == "succeeded", again.entity_failures
    assert again.counters.dependent_jobs_done == SMALL.issues
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db_path)


async def test_5xx_storm_on_the_listing_fails_the_run_with_whole_items_then_recovers(
    make_engine: EngineFactory, db_path: Path, tmp_path: Path
) -> None:
    with SimServer(SMALL.__class__(seed=6, issues=250, mrs=5, notes_per_entity=2)) as big:
        # Page 1 of the issue listing passes, page 2 fails on every attempt.
        big.control.add_fault(r"/projects/1/issues$", statuses=[200, 503, 503, 503])
        from .support import build_engine, write_config

        config = write_config(tmp_path, big.base_url)
        engine = build_engine(config, big.token)
        try:
            result = await run_standard_sync(engine, protocol.SyncParams(), Progress())
            assert result.status == "failed" and result.phase == "failed"
            assert result.failed_phase == "ingest"
            assert result.error is not None and result.error.code == "GITLAB_UNAVAILABLE"
            assert result.error.retryable
            assert [a.kind for a in result.recovery_actions] == ["waitAndRetry"]
            assert result.recovery_actions[0].request is not None
            assert result.recovery_actions[0].request.method == "lore/sync"
            assert result.counters.issues_ingested == 100
            assert scalar(db_path, "SELECT count(*) FROM issues") == 100
            assert scalar(db_path, "SELECT count(*) FROM app_locks") == 0
            run = connect(db_path).execute(
                "SELECT status, phase, failed_phase, error_json FROM sync_runs WHERE run_id = ?",
                (result.run_id,),
            ).fetchone()
            assert run[:3] == ("failed", "failed", "ingest") and "GITLAB_UNAVAILABLE" in run[3]
            assert_consistent(db_path)

            again = await run_standard_sync(engine, protocol.SyncParams(), Progress())
            assert again.status == "succeeded", again.error
            # Only what the failed run did not commit is written; the cursor only covered complete
            # updated_at groups, so the last group of page 1 is seen again, unchanged (no write).
            assert again.counters.issues_ingested == 150
            assert again.counters.issues_fetched - 150 == again.counters.unchanged >= 1
            assert_matches_truth(db_path, big.control.dump(PROJECT), sample_every=5)
            assert_consistent(db_path)
        finally:
            await engine.aclose()


async def test_429_storm_with_rate_limit_headers_is_waited_out(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.add_fault(r"/resource_label_events$", kind="rate_limit", retry_after=0.01, times=40)

    result = await _sync(make_engine, retry=PATIENT)

    assert result.status == "succeeded", result.entity_failures
    assert result.counters.rate_limit_waits == 40 and result.counters.retries == 40
    assert result.counters.wait_ms >= 40 * 10
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db_path)


async def test_429_storm_without_headers_beyond_the_budget_is_recorded_then_recovers(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    # No Retry-After, no RateLimit-*: exponential backoff, then GITLAB_RATE_LIMITED.
    sim.control.add_fault(r"/merge_requests/\d+/closes_issues$", kind="rate_limit", times=100_000)

    result = await _sync(make_engine)

    assert result.status == "partial"
    assert {(f.kind, f.stage, f.code, f.http_status) for f in result.entity_failures} == {
        ("mr", "closesIssues", "GITLAB_RATE_LIMITED", 429)
    }
    assert len(result.entity_failures) == SMALL.mrs
    assert result.counters.rate_limit_waits == 2 * SMALL.mrs  # 3 attempts each, 2 waits between
    assert scalar(db_path, "SELECT count(*) FROM entity_references") == 0
    assert_consistent(db_path)

    sim.control.clear_faults()
    _backoff_elapsed(db_path)
    again = await _sync(make_engine)
    assert again.status == "succeeded"
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)


@pytest.mark.parametrize("kind", ["drop", "truncate"])
async def test_dropped_and_truncated_responses_are_retried(
    sim: SimServer, make_engine: EngineFactory, db_path: Path, kind: str
) -> None:
    sim.control.add_fault(r"/(discussions|diffs)$", kind=kind, times=7)
    sim.control.add_fault(r"/projects/1/merge_requests$", kind=kind, times=1)

    result = await _sync(make_engine, retry=PATIENT)

    assert result.status == "succeeded", result.entity_failures
    assert result.counters.retries == 8
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db_path)
