"""Preflight (aggregated, zero writes), dry run (zero network) and primary-entity atomicity."""

from __future__ import annotations

from pathlib import Path

import msgspec

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.store import ledger
from lore_daemon.sync.surgical import run_preflight, run_surgical_sync

from .conftest import PROJECT, TOKEN_ENV, connect, content_snapshot, rows, surgical


def _db_bytes(engine: Engine) -> bytes:
    """The database file after a full checkpoint: every committed change is in it, the WAL empty."""
    engine.db.checkpoint()
    wal = Path(f"{engine.db.path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    return engine.db.path.read_bytes()


def _primary_paths(sim: SimServer) -> list[str]:
    return sorted(
        e["path"]
        for e in sim.control.log()
        if e["path"].rsplit("/", 2)[-2] in ("issues", "merge_requests")
        and e["path"].rsplit("/", 1)[-1].isdigit()
    )


async def test_preflight_aggregates_multiple_missing_iids(engine: Engine, sim: SimServer) -> None:
    targets = {"issues": [1, 901, 2, 902], "mrs": [3, 903]}  # 3 of 6 do not exist
    result = await run_preflight(engine, protocol.PreflightParams(project=PROJECT, **targets))
    assert not result.ok and result.auth.ok and result.auth.username
    missing = {(f.kind, f.iid) for f in result.failures}
    assert missing == {("issue", 901), ("issue", 902), ("mr", 903)}
    assert all(
        f.stage == "fetch" and f.code == "GITLAB_NOT_FOUND" and f.http_status == 404 for f in result.failures
    )
    assert all(not f.retryable for f in result.failures)
    found = {(e.kind, e.iid): e.found for e in result.entities}
    assert found == {
        ("issue", 1): True,
        ("issue", 901): False,
        ("issue", 2): True,
        ("issue", 902): False,
        ("mr", 3): True,
        ("mr", 903): False,
    }
    assert {a.kind for a in result.recovery_actions} == {"checkTarget"}
    assert len(result.recovery_actions) == 3
    assert "preflight" in result.stage_timings_ms

    # The run reports all three in ONE run too, having fetched all six (it never stops at the first).
    sim.control.clear_log()
    run = await run_surgical_sync(engine, surgical(**targets))
    assert run.status == "failed" and run.failed_phase == "preflight"
    assert {(f.kind, f.iid) for f in run.entity_failures} == missing
    assert len(_primary_paths(sim)) == 6


async def test_preflight_only_performs_zero_writes(engine: Engine, sim: SimServer) -> None:
    await run_surgical_sync(engine, surgical(issues=[1, 2], mrs=[1]))  # some content and a ledger row exist
    before = _db_bytes(engine)
    runs_before = rows(engine.db.path, "sync_runs")
    params = protocol.PreflightParams(project=PROJECT, issues=[1, 3, 950], mrs=[2])
    result = await run_preflight(engine, params)
    assert result.auth.ok and not result.ok and len(result.failures) == 1
    assert _db_bytes(engine) == before, "lore/preflight must not write a single byte"
    assert rows(engine.db.path, "sync_runs") == runs_before


async def test_preflight_reports_a_rejected_token_with_a_fix_token_action(
    engine: Engine, sim: SimServer
) -> None:
    sim.control.set_option("token_mode", "expired")
    result = await run_preflight(engine, protocol.PreflightParams(project=PROJECT, issues=[1]))
    assert not result.ok and not result.auth.ok
    fix = [a for a in result.recovery_actions if a.kind == "fixToken"]
    assert len(fix) == 1 and TOKEN_ENV in fix[0].title and fix[0].command == f"export {TOKEN_ENV}=…"
    run = await run_surgical_sync(engine, surgical(issues=[1]))
    assert run.status == "failed" and run.failed_phase == "preflight"
    assert run.error is not None and run.error.code == "GITLAB_AUTH_FAILED"
    assert run.recovery_actions[0].kind == "fixToken"
    assert sim.token not in msgspec.json.encode(run).decode()


async def test_dry_run_performs_zero_network_calls(engine: Engine, sim: SimServer) -> None:
    synced = await run_surgical_sync(engine, surgical(issues=[1], mrs=[2]))
    assert synced.status == "succeeded"
    before = _db_bytes(engine)
    sim.control.clear_log()
    result = await run_surgical_sync(engine, surgical(issues=[1, 7], mrs=[2], dry_run=True))
    assert sim.control.log() == [], "a dry run must not call GitLab"
    assert _db_bytes(engine) == before, "a dry run must not write"
    assert result.dry_run and result.run_id is None and result.status == "succeeded"
    assert [e.outcome for e in result.entities] == ["wouldSync"] * 3
    local = {(e.kind, e.iid): e.local for e in result.entities}
    assert local[("issue", 7)] == protocol.LocalState(exists=False)
    conn = connect(engine.db.path)
    try:
        updated, seen = conn.execute(
            "SELECT updated_at, last_seen_at FROM issues WHERE project_id = 1 AND iid = 1"
        ).fetchone()
    finally:
        conn.close()
    issue_1 = local[("issue", 1)]
    assert issue_1 is not None and issue_1.exists
    assert issue_1.updated_at is not None and issue_1.last_seen_at is not None
    assert int(issue_1.updated_at.timestamp() * 1000) == updated
    assert int(issue_1.last_seen_at.timestamp() * 1000) == seen
    mr_2 = local[("mr", 2)]
    assert mr_2 is not None and mr_2.exists

    # A project never synced is unknown locally: every target "does not exist", still no network.
    other = await run_surgical_sync(engine, surgical(project="group/sub/other", issues=[1], dry_run=True))
    assert sim.control.log() == []
    assert other.entities[0].local == protocol.LocalState(exists=False)


async def test_primary_failure_writes_no_content(engine: Engine, sim: SimServer) -> None:
    await run_surgical_sync(engine, surgical(issues=[10, 11]))  # pre-existing content must stay as is
    before = content_snapshot(engine.db.path)
    sim.control.add_fault(r"^/api/v4/projects/1/issues/3$", statuses=[404], times=10)
    result = await run_surgical_sync(engine, surgical(issues=[1, 2, 3, 4], mrs=[5]))
    assert content_snapshot(engine.db.path) == before, "one failed primary means no content write at all"
    assert result.status == "failed" and result.phase == "failed" and result.failed_phase == "preflight"
    assert result.error is not None and result.error.code == "PREFLIGHT_FAILED"
    assert [(f.kind, f.iid, f.stage, f.http_status) for f in result.entity_failures] == [
        ("issue", 3, "fetch", 404)
    ]
    assert all(e.outcome == "failed" for e in result.entities)
    kinds = [a.kind for a in result.recovery_actions]
    assert kinds == ["checkTarget", "retryRun"]
    without_3 = result.recovery_actions[1].request
    assert without_3 is not None and without_3.params == {"project": PROJECT, "issues": [1, 2, 4], "mrs": [5]}
    assert rows(engine.db.path, "app_locks") == []
    conn = connect(engine.db.path)
    try:
        run = ledger.get_run(conn, result.run_id or "")
    finally:
        conn.close()
    assert run is not None
    assert (run.status, run.phase, run.failed_phase) == ("failed", "failed", "preflight")
    assert run.error is not None and run.error.code == "PREFLIGHT_FAILED"
    assert [(f.kind, f.iid) for f in run.failures] == [("issue", 3)]


async def test_rate_limited_primary_suggests_wait_and_retry(engine: Engine, sim: SimServer) -> None:
    sim.control.add_fault(r"^/api/v4/projects/1/issues/2$", kind="rate_limit", retry_after=30, times=20)
    result = await run_surgical_sync(engine, surgical(issues=[1, 2]))
    assert result.status == "failed" and result.failed_phase == "preflight"
    failure = result.entity_failures[0]
    assert (failure.iid, failure.code, failure.retryable) == (2, "GITLAB_RATE_LIMITED", True)
    wait = [a for a in result.recovery_actions if a.kind == "waitAndRetry"]
    assert len(wait) == 1 and wait[0].after_ms == 30_000
    assert wait[0].request is not None and wait[0].request.params == {"project": PROJECT, "issues": [1, 2]}
    assert wait[0].command == "lore sync -p group/project --issue 1 --issue 2"
