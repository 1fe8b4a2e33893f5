"""The standard sync converges on GitLab as it really behaves (SPEC §7; issue 15, items 2-5).

Against the simulator over real HTTP and a real SQLite file, moving GitLab's clock with
``advance_clock`` instead of sleeping:

* a comment GitLab did not touch the parent for (ThrottledTouch) reaches the mirror at the next
  sync, even when the listing no longer returns the parent (settle window);
* a late commit inside the rewind window is compared with the stored row and ingested;
* a project with Issues disabled still gets its MRs, with a warning and no token blame;
* an MR closing an external tracker's issue keeps its internal links; the external ones are counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.timeutil import iso_to_ms
from tests.support.engine import Progress

from .conftest import SMALL, EngineFactory
from .support import PROJECT, assert_consistent, assert_matches_truth, scalar

THROTTLE_MS = 60_000  # GitLab's ThrottledTouch interval


async def _sync(engine: Engine) -> protocol.SyncResult:
    result = await run_standard_sync(engine, protocol.SyncParams(no_embed=True), Progress())
    assert result.status == "succeeded", (result.error, result.entity_failures)
    return result


def _watermark(db: Path, iid: int) -> int | None:
    return scalar(db, "SELECT discussions_synced_for_updated_at FROM issues WHERE iid = ?", iid)  # type: ignore[no-any-return]


def _note_stored(db: Path, note_id: int) -> bool:
    return bool(scalar(db, "SELECT count(*) FROM notes WHERE gitlab_id = ?", note_id))


def _dependent_requests(sim: SimServer, iid: int) -> list[str]:
    return [e["path"] for e in sim.control.log() if e["path"].startswith(f"/api/v4/projects/1/issues/{iid}/")]


async def test_a_comment_inside_the_throttle_window_reaches_the_mirror_at_the_next_sync(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    # The reproduction of issue 15: bump issue 3, sync, 20 s later a comment (GitLab does not
    # touch the parent: it was updated less than a minute before), 120 s later sync again.
    engine = make_engine()
    bumped = sim.control.mutate("bump_issue", project=PROJECT, iid=3)
    first = await _sync(engine)
    # Issue 3's dependents were fetched a moment after its updated_at: written, not final.
    assert first.counters.dependents_unsettled == 2  # its discussions and its events
    assert _watermark(db_path, 3) is None
    assert _watermark(db_path, 4) is not None  # seeded issues are long settled

    sim.control.advance_clock(20_000)
    note = sim.control.mutate("add_note", project=PROJECT, kind="issue", iid=3, body="inside the minute")
    assert note["touched"] is False and note["updated_at"] == bumped["updated_at"]
    sim.control.advance_clock(120_000)
    sim.control.clear_log()

    second = await _sync(engine)
    assert _note_stored(db_path, note["note_id"])
    assert _watermark(db_path, 3) == iso_to_ms(bumped["updated_at"])  # final now: 140 s after
    assert second.counters.dependents_unsettled == 0
    assert "/api/v4/projects/1/issues/3/discussions" in _dependent_requests(sim, 3)
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=5)

    sim.control.clear_log()
    third = await _sync(engine)  # settled: nothing is fetched again
    assert third.counters.dependent_jobs_done == 0 and _dependent_requests(sim, 3) == []


async def test_an_unsettled_parent_is_fetched_again_though_the_listing_no_longer_returns_it(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    engine = make_engine()
    await _sync(engine)
    bumped = sim.control.mutate("bump_issue", project=PROJECT, iid=3)
    await _sync(engine)  # issue 3: fetched a moment after its update, not final
    sim.control.advance_clock(20_000)
    sim.control.mutate("bump_issue", project=PROJECT, iid=4)  # moves the cursor 20 s past issue 3
    await _sync(engine)  # issue 3 re-listed by the 2 s rewind, fetched again: still not final
    assert (_watermark(db_path, 3) or 0) < iso_to_ms(bumped["updated_at"])
    note = sim.control.mutate("add_note", project=PROJECT, kind="issue", iid=3, body="late word")
    assert note["touched"] is False
    sim.control.advance_clock(120_000)
    sim.control.clear_log()

    last = await _sync(engine)
    # The listing (updated_after = issue 4's time - 2 s) no longer returns issue 3, nor anything
    # new; its dependents were queued again because its watermark was behind its version.
    assert last.counters.issues_fetched == 0 and last.counters.issues_ingested == 0
    assert "/api/v4/projects/1/issues/3/discussions" in _dependent_requests(sim, 3)
    assert _note_stored(db_path, note["note_id"])
    assert _watermark(db_path, 3) == iso_to_ms(bumped["updated_at"])
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=5)
    assert_consistent(db_path)


async def test_a_late_commit_inside_the_rewind_window_is_ingested(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    engine = make_engine()
    bumped = sim.control.mutate("bump_issue", project=PROJECT, iid=5)
    await _sync(engine)
    cursor = scalar(db_path, "SELECT updated_at FROM sync_cursors WHERE resource = 'issues'")
    assert cursor == iso_to_ms(bumped["updated_at"])
    # Issue 6 commits now a change Rails stamped 800 ms before issue 5's: older than the cursor,
    # inside the 2 s rewind (API-NOTES §5b).
    now = sim.control.clock()["now_ms"]
    late = sim.control.mutate("late_commit", project=PROJECT, kind="issue", iid=6,
                              lag_ms=now - cursor + 800)
    stamped = iso_to_ms(late["updated_at"])
    assert late["late"] is True and cursor - 2_000 < stamped < cursor

    result = await _sync(engine)
    assert result.counters.issues_fetched == 1 and result.counters.issues_ingested == 1
    assert scalar(db_path, "SELECT updated_at FROM issues WHERE iid = 6") == stamped
    assert scalar(db_path, "SELECT updated_at FROM sync_cursors WHERE resource = 'issues'") == cursor
    assert_matches_truth(db_path, sim.control.dump(PROJECT), sample_every=5)

    again = await _sync(engine)  # re-listed by the rewind once more, unchanged: no write, no count
    assert again.counters.issues_fetched == again.counters.issues_ingested == 0


def _warned_about(result: protocol.SyncResult, what: str) -> list[str]:
    return [w for w in result.warnings if f"{PROJECT}: {what} skipped" in w]


async def test_a_project_with_issues_disabled_still_gets_its_mrs_and_a_warning(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.set_project_option(PROJECT, "issues_enabled", False)
    engine = make_engine()
    result = await _sync(engine)

    assert result.error is None and result.recovery_actions == []
    (warning,) = _warned_about(result, "issues")
    assert "403" in warning and "Issues feature is disabled" in warning and "token is not at fault" in warning
    assert result.counters.mrs_ingested == SMALL.mrs and result.counters.issues_ingested == 0
    assert scalar(db_path, "SELECT count(*) FROM issues") == 0
    assert scalar(db_path, "SELECT count(*) FROM merge_requests") == SMALL.mrs
    unsynced = "SELECT count(*) FROM merge_requests WHERE discussions_synced_for_updated_at IS NULL"
    assert scalar(db_path, unsynced) == 0
    forbidden = [e for e in sim.control.log() if e["status"] == 403]
    assert [e["path"] for e in forbidden] == ["/api/v4/projects/1/issues"]  # asked once, then skipped


async def test_issues_disabled_after_a_sync_keeps_them_and_syncs_the_mrs(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    engine = make_engine()
    await _sync(engine)
    sim.control.set_project_option(PROJECT, "issues_enabled", False)
    sim.control.mutate("bump_mr", project=PROJECT, iid=2)
    result = await _sync(engine)
    assert _warned_about(result, "issues") and not _warned_about(result, "merge requests")
    assert result.counters.mrs_ingested == 1
    assert scalar(db_path, "SELECT count(*) FROM issues") == SMALL.issues  # what was synced stays


async def test_an_mr_closing_an_external_issue_keeps_its_internal_links(
    sim: SimServer, make_engine: EngineFactory, db_path: Path
) -> None:
    sim.control.set_project_option(PROJECT, "external_tracker", True)
    truth = sim.control.dump(PROJECT)
    closes: dict[str, list[dict[str, Any]]] = truth["closes_issues"]
    external = [i for items in closes.values() for i in items if isinstance(i["id"], str)]
    internal = [i for items in closes.values() for i in items if isinstance(i["id"], int)]
    assert external and internal

    result = await _sync(make_engine())
    assert result.entity_failures == [] and result.counters.dependent_jobs_failed == 0
    assert result.counters.closes_external == len(external)
    assert result.counters.closes_links == len(internal)
    assert [w for w in result.warnings if "external issue tracker" in w]
    truth["closes_issues"] = {
        iid: [i for i in items if isinstance(i["id"], int)] for iid, items in closes.items()
    }
    assert_matches_truth(db_path, truth, sample_every=5)  # every internal link, nothing else
