"""Interactive runs go first (SPEC §7 rate limits, §8.5; issue 15, items 8 and 10).

* A standard sync holds the ``sync`` lock one write group at a time: a surgical run started in the
  middle of a long standard sync completes while the standard sync is still running.
* A ``Retry-After: 30`` storm pauses every request of the process; the standard sync waits it out
  (visible in progress, counted) without holding the ``sync`` lock, a surgical run meanwhile fails
  fast with ``GITLAB_RATE_LIMITED`` and ``waitAndRetry``/``afterMs``, and the sync completes. The
  test moves the rate gate's clock instead of sleeping 30 s: the client re-reads its gate at least
  once a second, so every paused request resumes as soon as the pause is over on that clock.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.gitlab._gate import RateGate
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.sim import SimServer
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support.engine import Progress
from tests.support.wait import wait_until_async

from .conftest import EngineFactory
from .support import PROJECT, assert_consistent, assert_matches_truth, connect

RETRY_AFTER_S = 30


def _locks_held(db: Path) -> list[str]:
    conn = connect(db)
    try:
        return [str(row[0]) for row in conn.execute("SELECT name FROM app_locks ORDER BY name")]
    finally:
        conn.close()


async def test_a_surgical_run_during_a_long_standard_sync_completes_while_it_runs(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.set_latency(40)  # a standard sync of a few seconds: ~500 requests, 8 at a time
    engine = make_engine()
    progress = Progress()
    standard = asyncio.create_task(run_standard_sync(engine, protocol.SyncParams(no_embed=True), progress))
    await wait_until_async(
        lambda: (progress.notes and progress.notes[-1].counters.dependent_jobs_done >= 20) or standard.done(),
        what="the standard sync to be draining its dependents",
    )
    assert not standard.done()
    assert "standard" in _locks_held(db_path)

    params = protocol.SyncSurgicalParams(project=PROJECT, issues=[7], mrs=[3])
    surgical = await run_surgical_sync(engine, params)

    assert surgical.status == "succeeded", surgical.entity_failures
    assert not standard.done(), "the surgical run waited for the whole standard sync"
    # The issue's payload is the one the standard sync just listed; an MR's single-MR payload
    # has more fields than its list form, so it is written again.
    assert [e.outcome for e in surgical.entities] == ["unchanged", "ingested"]
    assert "lockWait" in surgical.stage_timings_ms
    result = await standard
    assert result.status == "succeeded", result.entity_failures
    assert _locks_held(db_path) == []
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db_path)


class MovableClock:
    """``time.monotonic`` plus an offset the test moves forward (the rate gate's clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def _on_gate_clock(engine: Engine, token: str, clock: MovableClock) -> None:
    """Give the engine a client like its own whose rate gate runs on ``clock``."""
    old = engine.gitlab
    engine.gitlab = GitLabClient(
        old.base_url, token, concurrency=old.concurrency, retry=old.retry_policy,
        per_page=engine.tuning.per_page, gate=RateGate(clock=clock),
    )
    await old.aclose()


async def test_a_retry_after_30_storm_pauses_every_request_and_the_sync_completes(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.set_latency(10)
    sim.control.add_fault(r"/discussions$", kind="rate_limit", retry_after=RETRY_AFTER_S, times=6)
    engine = make_engine()
    clock = MovableClock()
    await _on_gate_clock(engine, sim.token, clock)
    gate = engine.gitlab.gate
    progress = Progress()
    standard = asyncio.create_task(run_standard_sync(engine, protocol.SyncParams(no_embed=True), progress))
    await wait_until_async(lambda: gate.paused_for() > 0 or standard.done(), what="the first 429")
    assert not standard.done()
    assert gate.paused_for() > RETRY_AFTER_S - 2

    await asyncio.sleep(0.5)  # half a second of the 30: nothing may go out meanwhile
    log = sim.control.log()
    first_429 = min(e["finished_at"] for e in log if e["status"] == 429)
    started_after = [e["path"] for e in log if e["started_at"] > first_429 + 100]
    assert started_after == [], "requests went out during the pause"
    # The standard sync waits without the sync lock: a surgical run is not kept waiting for it...
    assert _locks_held(db_path) == ["standard"]
    # ...and, being interactive, fails fast instead of waiting 30 s, telling when to retry.
    surgical = await run_surgical_sync(engine, protocol.SyncSurgicalParams(project=PROJECT, issues=[1]))
    assert (surgical.status, surgical.failed_phase) == ("failed", "preflight")
    assert {f.code for f in surgical.entity_failures} == {"GITLAB_RATE_LIMITED"}
    wait = next(a for a in surgical.recovery_actions if a.kind == "waitAndRetry")
    assert wait.after_ms is not None and 2_000 < wait.after_ms <= RETRY_AFTER_S * 1000
    assert len(sim.control.log()) == len(log)  # the surgical run sent nothing into the storm
    assert not standard.done()

    while not standard.done():  # 30 s later on the gate's clock (each new pause too)
        clock.offset += gate.paused_for()
        await asyncio.sleep(0.05)
    result = standard.result()
    assert result.status == "succeeded", result.entity_failures
    assert result.counters.rate_limit_waits >= 1
    assert result.counters.wait_ms >= RETRY_AFTER_S * 1000
    reports = [n.message for n in progress.notes if "rate_limit 429" in n.message]
    assert reports and f"in {RETRY_AFTER_S * 1000} ms" in reports[0]  # the wait was visible
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db_path)
