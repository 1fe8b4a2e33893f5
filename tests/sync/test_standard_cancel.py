"""Cancelling a standard sync mid-ingest or mid-dependents: the open transaction rolls back at the
next safe point, claims and the lock are released, the ledger says ``cancelled`` (with the phase
it stopped in), and nothing is half-written. The next sync then completes to the truth.

Cancellation is triggered from inside the writer thread, while an item's transaction is open, the
way a ``$/cancelRequest`` lands in the middle of real work: the task is cancelled from the other
thread and the hook waits until the run has raised its cancel flag.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lore_daemon import protocol
from lore_daemon.sim import SimServer
from lore_daemon.store import locks
from lore_daemon.sync import drain_phase, ingest_phase
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.tuning import Tuning
from tests.support.engine import Progress

from .conftest import SMALL, EngineFactory
from .support import PROJECT, assert_consistent, assert_matches_truth, connect, scalar


class CancelAt:
    """Wraps a writer-thread function: on its ``nth`` call, cancel the run's task and wait until
    the run has seen it, then let the call finish (its own transaction commits)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str, nth: int) -> None:
        self.nth = nth
        self.calls = 0
        self.ctx: RunContext | None = None
        self.task: asyncio.Task[Any] | None = None
        self.loop = asyncio.get_running_loop()
        self.seen_cancel = threading.Event()
        original: Callable[..., Any] = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.calls += 1
            if self.calls == self.nth:
                assert self.task is not None and self.ctx is not None
                self.loop.call_soon_threadsafe(self.task.cancel)
                self.seen_cancel.set()
                assert self.ctx.cancel_event.wait(10), "the run never saw the cancellation"
            return result

        monkeypatch.setattr(module, name, wrapper)

    def capture_ctx(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
        """Grab the RunContext from a writer function that receives it as its second argument."""
        original: Callable[..., Any] = getattr(module, name)

        def wrapper(conn: Any, ctx: RunContext, *args: Any) -> Any:
            self.ctx = ctx
            return original(conn, ctx, *args)

        monkeypatch.setattr(module, name, wrapper)


def _run_row(db: Path, run_id: str | None = None) -> tuple[Any, ...]:
    sql = ("SELECT status, phase, failed_phase, cancelled_at IS NOT NULL, error_json FROM sync_runs "
           "ORDER BY started_at DESC LIMIT 1")
    return tuple(connect(db).execute(sql).fetchone())


async def _cancelled_mid_ingest(
    sim: SimServer, make_engine: EngineFactory, db_path: Path, monkeypatch: pytest.MonkeyPatch,
    hook: CancelAt, committed: int, tuning: Tuning | None = None,
) -> None:
    hook.capture_ctx(monkeypatch, ingest_phase, "_write_page")
    engine = make_engine(tuning=tuning)
    hook.task = asyncio.create_task(run_standard_sync(engine, protocol.SyncParams(), Progress()))

    with pytest.raises(asyncio.CancelledError):
        await hook.task

    assert scalar(db_path, "SELECT count(*) FROM issues") == committed
    status, phase, failed_phase, cancelled, error = _run_row(db_path)
    assert (status, phase, failed_phase, cancelled) == ("cancelled", "failed", "ingest", 1)
    assert '"CANCELLED"' in error
    assert scalar(db_path, "SELECT count(*) FROM app_locks") == 0
    assert scalar(db_path, "SELECT count(*) FROM dirty_sources") == committed  # docs never started
    assert_consistent(db_path)

    monkeypatch.undo()
    again = await run_standard_sync(make_engine(), protocol.SyncParams(), Progress())
    assert again.status == "succeeded"
    assert again.counters.issues_ingested == SMALL.issues - committed
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)


async def test_cancel_mid_ingest_keeps_the_pages_before_it(
    sim: SimServer, make_engine: EngineFactory, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page is one transaction: cancelled while page 1 is written, page 1 commits, page 2 never
    starts (pages of 20 here, so the 60 issues take three)."""
    hook = CancelAt(monkeypatch, ingest_phase, "ingest_group", nth=1)
    await _cancelled_mid_ingest(
        sim, make_engine, db_path, monkeypatch, hook, committed=20, tuning=Tuning(per_page=20)
    )


async def test_cancel_mid_ingest_item_by_item_rolls_back_the_open_item(
    sim: SimServer, make_engine: EngineFactory, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages the set-based path does not take are written item by item, each item its own
    savepoint: item 25 was committed before the cancel was seen; item 26's rolled back."""
    monkeypatch.setattr(ingest_phase, "ingest_group", lambda *args, **kwargs: None)
    hook = CancelAt(monkeypatch, ingest_phase, "ingest_issue", nth=25)
    await _cancelled_mid_ingest(sim, make_engine, db_path, monkeypatch, hook, committed=25)


async def test_cancel_mid_dependents_releases_claims(
    sim: SimServer, make_engine: EngineFactory, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = CancelAt(monkeypatch, drain_phase, "write_group", nth=3)
    hook.capture_ctx(monkeypatch, drain_phase, "_write_results")
    jobs_written = 0
    counted = drain_phase.write_group

    def counting(conn: Any, owner: str, units: list[Any], into: Any) -> None:
        nonlocal jobs_written
        counted(conn, owner, units, into)
        jobs_written += len(units)  # no fetch fails here: every job of a written group completes

    monkeypatch.setattr(drain_phase, "write_group", counting)
    engine = make_engine()
    hook.task = asyncio.create_task(run_standard_sync(engine, protocol.SyncParams(), Progress()))

    with pytest.raises(asyncio.CancelledError):
        await hook.task

    # The third group saw the cancel while it was being written: it committed, nothing after it ran.
    total_jobs = 2 * SMALL.issues + 4 * SMALL.mrs
    assert hook.calls == 3 and 0 < jobs_written < total_jobs
    assert scalar(db_path, "SELECT count(*) FROM pending_dependent_fetches") == total_jobs - jobs_written
    assert scalar(db_path, "SELECT count(*) FROM pending_dependent_fetches WHERE locked_by IS NOT NULL") == 0
    status, phase, failed_phase, cancelled, _ = _run_row(db_path)
    assert (status, phase, failed_phase, cancelled) == ("cancelled", "failed", "dependents", 1)
    assert scalar(db_path, "SELECT count(*) FROM app_locks") == 0
    assert scalar(db_path, "SELECT count(*) FROM documents") == 0  # docs never started
    assert_consistent(db_path)

    monkeypatch.undo()
    again = await run_standard_sync(make_engine(), protocol.SyncParams(), Progress())
    assert again.status == "succeeded"
    assert again.counters.dependent_jobs_done == total_jobs - jobs_written
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)


async def test_cancel_while_waiting_for_the_lock(make_engine: EngineFactory, db_path: Path) -> None:
    engine = make_engine()
    await engine.db.write(
        lambda conn: locks.try_acquire(conn, "sync", owner="other", run_id=None, pid=1, now_ms=2**52,
                                       stale_ms=60_000)
    )
    progress = Progress()
    task = asyncio.create_task(run_standard_sync(engine, protocol.SyncParams(), progress))
    waiting = asyncio.Event()
    progress.hooks.append(lambda note: waiting.set() if "waiting for the sync lock" in note.message else None)
    await asyncio.wait_for(waiting.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    status, phase, failed_phase, cancelled, _ = _run_row(db_path)
    assert (status, phase, failed_phase, cancelled) == ("cancelled", "failed", "ingest", 1)
    holders = connect(db_path).execute("SELECT owner FROM app_locks").fetchall()
    assert holders == [("other",)]  # the other holder's lock is untouched
    assert scalar(db_path, "SELECT count(*) FROM issues") == 0
