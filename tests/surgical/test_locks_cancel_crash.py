"""Lock window, cancellation and crashes (docs/surgical-sync.md, invariants 5 and 11), with real
child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.errors import LoreError
from lore_daemon.sim import SimServer
from lore_daemon.sync import surgical_run
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support import REPO
from tests.support.engine import Progress

from .children import child_line, lock_held_by_another_process
from .conftest import (
    TOKEN_ENV,
    build_engine,
    connect,
    content_snapshot,
    rows,
    stored_run,
    surgical,
    write_config,
)


def _is_lock_wait(note: protocol.ProgressNotification) -> bool:
    return note.event == "report" and note.message.startswith("waiting for the sync lock")


async def test_lock_window_does_not_block_during_preflight(engine: Engine, sim: SimServer) -> None:
    progress = Progress()
    seen: dict[str, Any] = {}
    with lock_held_by_another_process(engine.db.path) as (holder, holder_pid):

        def observe(note: protocol.ProgressNotification) -> None:
            if note.phase == "preflight" and note.event == "end":
                seen["holder_at_preflight_end"] = [r[3] for r in rows(engine.db.path, "app_locks")]
            if _is_lock_wait(note) and "released" not in seen:
                seen["released"] = True
                assert holder.stdin is not None
                holder.stdin.write("release\n")
                holder.stdin.flush()

        progress.hooks.append(observe)
        result = await run_surgical_sync(engine, surgical(issues=[1, 2], mrs=[1]), progress)
        assert child_line(holder)["event"] == "released"
        assert holder.wait(timeout=10) == 0

    assert seen["holder_at_preflight_end"] == [holder_pid], (
        "preflight completed while the other process held it"
    )
    assert result.status == "succeeded"
    notes = progress.notes
    preflight_end = next(i for i, n in enumerate(notes) if n.phase == "preflight" and n.event == "end")
    first_wait = next(i for i, n in enumerate(notes) if _is_lock_wait(n))
    ingest_begin = next(i for i, n in enumerate(notes) if n.phase == "ingest" and n.event == "begin")
    ingest_end = next(i for i, n in enumerate(notes) if n.phase == "ingest" and n.event == "end")
    assert preflight_end < ingest_begin < first_wait < ingest_end
    assert notes[first_wait].phase == "ingest" and str(holder_pid) in notes[first_wait].message
    assert result.stage_timings_ms["lockWait"] > 0
    assert (
        stored_run(engine.db.path, result.run_id).stage_timings_ms["lockWait"]
        == result.stage_timings_ms["lockWait"]
    )


async def test_lock_timeout_fails_in_ingest_with_wait_and_retry(tmp_path: Path, sim: SimServer) -> None:
    engine = build_engine(tmp_path, sim, lock_timeout_ms=300)
    try:
        before = content_snapshot(engine.db.path)
        with lock_held_by_another_process(engine.db.path) as (_, holder_pid):
            result = await run_surgical_sync(engine, surgical(issues=[1]))
            assert [r[3] for r in rows(engine.db.path, "app_locks")] == [holder_pid], "ours was never taken"
        assert result.status == "failed" and result.failed_phase == "ingest"
        assert result.error is not None and result.error.code == "LOCK_TIMEOUT" and result.error.retryable
        wait = result.recovery_actions[0]
        assert wait.kind == "waitAndRetry" and wait.after_ms is not None and wait.after_ms > 0
        assert wait.request is not None and wait.request.params == {"project": "group/project", "issues": [1]}
        assert content_snapshot(engine.db.path) == before
    finally:
        await engine.aclose()


async def test_cancel_mid_dependents_rolls_back_and_releases_lock(
    engine: Engine, sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue dependents finish while the slow MR primary keeps preflight busy, so both issues'
    # writes are queued together; the MRs' diffs are still on the wire when the cancel lands.
    sim.control.set_latency(300, route=r"/merge_requests/\d+$")
    sim.control.set_latency(5000, route=r"/diffs$")
    attempts: list[tuple[int, str]] = []
    original = surgical_run.write_target_dependents

    def recording(conn: Any, **kwargs: Any) -> Any:
        try:
            written = original(conn, **kwargs)
        except LoreError as exc:
            attempts.append((kwargs["fetched"].iid, exc.code))
            raise
        attempts.append((kwargs["fetched"].iid, "committed"))
        return written

    monkeypatch.setattr(surgical_run, "write_target_dependents", recording)
    progress = Progress()
    task = asyncio.create_task(run_surgical_sync(engine, surgical(issues=[1, 2], mrs=[1, 2]), progress))

    def cancel_after_first_target(note: protocol.ProgressNotification) -> None:
        if note.phase == "dependents" and note.event == "report" and not task.cancelling():
            task.cancel()

    progress.hooks.append(cancel_after_first_target)
    with pytest.raises(asyncio.CancelledError):
        await task

    assert attempts == [(1, "committed"), (2, "CANCELLED")], "issue 2's open transaction was rolled back"
    run_id = progress.notes[0].run_id
    run = stored_run(engine.db.path, run_id)
    assert (run.status, run.phase, run.failed_phase) == ("cancelled", "failed", "dependents")
    assert run.cancelled_at is not None and run.error is not None and run.error.code == "CANCELLED"
    assert rows(engine.db.path, "app_locks") == [], "the sync lock was released"
    conn = connect(engine.db.path)
    try:
        stored = {
            iid: conn.execute(
                "SELECT (SELECT count(*) FROM discussions"
                " WHERE noteable_type = 'issue' AND noteable_id = i.gitlab_id)"
                " + (SELECT count(*) FROM resource_state_events WHERE entity_type = 'issue'"
                " AND entity_id = i.gitlab_id) FROM issues i WHERE i.project_id = 1 AND i.iid = ?",
                (iid,),
            ).fetchone()[0]
            for iid in (1, 2)
        }
        mr_files = conn.execute("SELECT count(*) FROM mr_file_changes").fetchone()[0]
        primaries = conn.execute("SELECT count(*) FROM issues").fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    assert primaries == 2, "the primaries had committed before the cancel"
    assert stored[1] > 0, "issue 1's dependents committed before the cancel"
    assert stored[2] == 0, "issue 2's dependents were rolled back"
    assert mr_files == 0, "the MRs' dependents were never written"


async def test_sigkill_mid_ingest_is_abandoned_on_restart(tmp_path: Path, sim: SimServer) -> None:
    config_path = write_config(tmp_path, sim.base_url, stale_lock_ms=1000)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.surgical.crash_child", str(config_path)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
        env={**os.environ, TOKEN_ENV: sim.token},
    )
    try:
        while (event := child_line(child))["event"] != "inside-ingest":
            run_id = event.get("runId")
        assert event["inTransaction"] is True
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    db_path = tmp_path / "lore.db"
    conn = connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM issues").fetchone() == (0,), (
            "the open transaction never landed"
        )
        assert conn.execute("SELECT status, phase FROM sync_runs").fetchall() == [("running", "ingest")]
        assert [r[3] for r in conn.execute("SELECT * FROM app_locks")] == [child.pid]
    finally:
        conn.close()

    engine = build_engine(tmp_path, sim, stale_lock_ms=1000)
    try:
        result = await run_surgical_sync(engine, surgical(issues=[1, 2, 3], mrs=[1]))
    finally:
        await engine.aclose()
    assert result.status == "succeeded", "the restarted daemon takes the stale lock over"
    dead = stored_run(db_path, run_id)
    assert (dead.status, dead.phase, dead.failed_phase) == ("failed", "failed", "ingest")
    assert dead.error is not None and dead.error.code == "ABANDONED"
    assert dead.suggested_retry is not None and dead.suggested_retry.kind == "retryRun"
    conn = connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM issues").fetchone() == (3,)
    finally:
        conn.close()
