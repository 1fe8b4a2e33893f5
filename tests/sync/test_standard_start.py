"""How a standard sync starts and reports: problems that prevent a run raise before any write,
a busy lock ends the run ``failed``/``LOCK_TIMEOUT``, stale runs of dead processes are closed,
``projects`` narrows the run, and the ledger and progress follow the phases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lore_daemon import protocol
from lore_daemon.errors import ConfigError, GitLabAuthError, GitLabNotFoundError
from lore_daemon.sim import SimServer
from lore_daemon.store import ledger, locks
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.timeutil import now_ms
from tests.support.engine import Progress

from .conftest import SMALL, EngineFactory
from .support import connect, scalar


async def test_rejected_token_raises_before_any_write(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.set_option("token_mode", "expired")
    engine = make_engine()
    with pytest.raises(GitLabAuthError) as caught:
        await run_standard_sync(engine, protocol.SyncParams(), Progress())
    assert caught.value.code == "GITLAB_AUTH_FAILED"
    assert scalar(db_path, "SELECT count(*) FROM sync_runs") == 0
    assert scalar(db_path, "SELECT count(*) FROM projects") == 0


async def test_unknown_project_raises_before_any_write(make_engine: EngineFactory, db_path: Path) -> None:
    engine = make_engine()
    with pytest.raises(GitLabNotFoundError):
        await run_standard_sync(engine, protocol.SyncParams(projects=["nope/missing"]), Progress())
    assert scalar(db_path, "SELECT count(*) FROM sync_runs") == 0


async def test_no_project_at_all_is_a_config_error(make_engine: EngineFactory) -> None:
    engine = make_engine()
    with pytest.raises(ConfigError) as caught:
        await run_standard_sync(engine, protocol.SyncParams(projects=[]), Progress())
    assert caught.value.code == "CONFIG_INVALID"


async def test_projects_param_narrows_the_run(make_engine: EngineFactory, db_path: Path) -> None:
    result = await run_standard_sync(make_engine(),
        protocol.SyncParams(projects=["group/sub/other"], no_embed=True), Progress()
    )
    assert result.status == "succeeded" and result.project == "group/sub/other"
    assert result.requested.projects == ["group/sub/other"]
    assert result.warnings == []  # noEmbed: the embed phase is skipped on request, not by default
    assert result.counters.issues_ingested == SMALL.other_issues
    assert result.counters.mrs_ingested == SMALL.other_mrs
    assert {r[0] for r in connect(db_path).execute("SELECT DISTINCT project_id FROM issues")} == {2}


async def test_busy_lock_fails_the_run_with_lock_timeout(make_engine: EngineFactory, db_path: Path) -> None:
    engine = make_engine(lock_timeout_ms=150)
    await engine.db.write(
        lambda conn: locks.try_acquire(conn, "sync", owner="other", run_id="theirs", pid=4242,
                                       now_ms=now_ms() + 3_600_000, stale_ms=60_000)
    )
    progress = Progress()
    result = await run_standard_sync(engine, protocol.SyncParams(), progress)

    assert (result.status, result.phase, result.failed_phase) == ("failed", "failed", "ingest")
    assert result.error is not None and result.error.code == "LOCK_TIMEOUT"
    assert result.error.details["holderRunId"] == "theirs"
    action = result.recovery_actions[0]
    assert action.kind == "waitAndRetry" and action.after_ms is not None and action.after_ms > 0
    assert action.request is not None and action.request.method == "lore/sync"
    assert any("waiting for the sync lock held by run theirs" in n.message for n in progress.notes)
    assert scalar(db_path, "SELECT count(*) FROM issues") == 0
    row = connect(db_path).execute("SELECT status, failed_phase, error_json FROM sync_runs").fetchone()
    assert row[:2] == ("failed", "ingest") and json.loads(row[2])["code"] == "LOCK_TIMEOUT"


async def test_stale_running_run_is_closed_as_abandoned_at_start(
    make_engine: EngineFactory, db_path: Path
) -> None:
    engine = make_engine()
    long_ago = now_ms() - 3_600_000

    def dead_run(conn: object) -> None:
        ledger.start_run(conn, run_id="dead", mode="standard", phase="ingest", project=None,  # type: ignore[arg-type]
                         requested=protocol.RequestedTargets(), owner="gone", pid=1, now_ms=long_ago)
        ledger.update_run(conn, "dead", now_ms=long_ago, phase="docs")  # type: ignore[arg-type]

    await engine.db.write(dead_run)
    result = await run_standard_sync(engine, protocol.SyncParams(), Progress())

    assert result.status == "succeeded"
    row = connect(db_path).execute(
        "SELECT status, phase, failed_phase, error_json FROM sync_runs WHERE run_id = 'dead'"
    ).fetchone()
    assert row[:3] == ("failed", "failed", "docs") and json.loads(row[3])["code"] == "ABANDONED"


async def test_ledger_and_progress_follow_the_phases(make_engine: EngineFactory, db_path: Path) -> None:
    engine = make_engine()
    progress = Progress()
    result = await run_standard_sync(engine, protocol.SyncParams(), progress)

    assert result.status == "succeeded"
    begins = [n.phase for n in progress.notes if n.event == "begin"]
    ends = [n.phase for n in progress.notes if n.event == "end"]
    assert begins == ["ingest", "ingest", "dependents", "docs", "embed"]
    assert ends == ["ingest", "dependents", "docs", "embed", "done"]
    assert all(n.run_id == result.run_id for n in progress.notes)
    final = progress.notes[-1]
    assert final.counters.issues_ingested == SMALL.issues
    run = connect(db_path).execute(
        "SELECT mode, status, phase, failed_phase, finished_at IS NOT NULL, counters_json, "
        "stage_timings_json FROM sync_runs"
    ).fetchone()
    assert run[:5] == ("standard", "succeeded", "done", None, 1)
    counters = json.loads(run[5])
    assert counters["issuesIngested"] == SMALL.issues and counters["mrsIngested"] == SMALL.mrs
    assert counters["documentsRegenerated"] == result.counters.documents_regenerated > 0
    assert set(json.loads(run[6])) >= {"ingest", "dependents", "docs", "embed", "lockWait"}
