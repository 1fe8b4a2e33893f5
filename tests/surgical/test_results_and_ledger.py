"""Robot output, the durable ledger, progress, and best-effort dependents (docs/surgical-sync.md,
invariants 12, 10 and 7)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support.engine import Progress

from .conftest import PROJECT, connect, rows, stored_run, surgical

PHASES = ["preflight", "ingest", "dependents", "docs", "embed"]


def _discussion_count(db_path: Path, iid: int) -> int:
    conn = connect(db_path)
    try:
        (count,) = conn.execute(
            "SELECT count(*) FROM discussions d JOIN issues i ON d.noteable_type = 'issue'"
            " AND d.noteable_id = i.gitlab_id WHERE i.iid = ? AND i.project_id = 1",
            (iid,),
        ).fetchone()
    finally:
        conn.close()
    return int(count)


async def test_result_ledger_and_progress_follow_the_phases(engine: Engine, sim: SimServer) -> None:
    progress = Progress()
    ledger_phase_at_begin: list[str] = []

    def record_ledger_phase(note: protocol.ProgressNotification) -> None:
        if note.event == "begin" and note.run_id is not None:
            conn = connect(engine.db.path)
            try:
                ledger_phase_at_begin.append(
                    conn.execute("SELECT phase FROM sync_runs WHERE run_id = ?", (note.run_id,)).fetchone()[0]
                )
            finally:
                conn.close()

    progress.hooks.append(record_ledger_phase)
    base = sim.base_url
    params = surgical(
        project=None,
        refs=["group/project#1", "!2"],
        issue_urls=[f"{base}/group/project/-/work_items/3"],
        mrs=[4],
        issues=[1],
    )
    result = await run_surgical_sync(engine, params, progress)

    assert (result.status, result.phase, result.failed_phase, result.mode) == (
        "succeeded",
        "done",
        None,
        "surgical",
    )
    assert result.project == PROJECT and result.run_id
    assert [(e.kind, e.iid, e.outcome) for e in result.entities] == [
        ("issue", 1, "ingested"),
        ("issue", 3, "ingested"),
        ("mr", 4, "ingested"),
        ("mr", 2, "ingested"),
    ]
    for entity in result.entities:
        stages = ["discussions", "events"] + (["closesIssues", "diffs"] if entity.kind == "mr" else [])
        assert sorted(entity.dependents) == sorted(stages)
        assert set(entity.dependents.values()) <= {"synced", "unchanged"}
        assert entity.document_ids and entity.title and entity.web_url and entity.updated_at
    assert set(result.stage_timings_ms) >= {*PHASES, "lockWait"}
    counters = result.counters
    assert (
        counters.issues_fetched,
        counters.mrs_fetched,
        counters.issues_ingested,
        counters.mrs_ingested,
    ) == (2, 2, 2, 2)
    assert counters.requests == len(sim.control.log()) and counters.discussions > 0 and counters.events > 0
    assert counters.documents_regenerated == len({d for e in result.entities for d in e.document_ids})
    assert result.entity_failures == [] and result.recovery_actions == [] and result.error is None
    assert result.requested.refs == ["group/project#1", "!2"] and result.requested.issues == [1, 3]

    # Progress: begin/end per phase in order, per-entity reports in between, one run id throughout.
    assert progress.phases("begin") == PHASES and progress.phases("end") == PHASES
    assert {n.run_id for n in progress.notes} == {result.run_id}
    for phase in ("preflight", "ingest", "dependents", "docs"):
        reported = {
            (n.entity.kind, n.entity.iid)
            for n in progress.notes
            if n.phase == phase and n.event == "report" and n.entity is not None
        }
        assert reported == {(e.kind, e.iid) for e in result.entities}, phase
    # The ledger row moved through the phases as they began.
    assert ledger_phase_at_begin == PHASES

    run = stored_run(engine.db.path, result.run_id)
    assert (run.mode, run.status, run.phase, run.failed_phase) == ("surgical", "succeeded", "done", None)
    assert run.finished_at is not None and run.cancelled_at is None and run.project == PROJECT
    assert run.requested == result.requested
    assert run.counters == result.counters and run.stage_timings_ms == result.stage_timings_ms
    summary = run.surgical_summary
    assert summary is not None
    assert [(e["kind"], e["iid"], e["outcome"]) for e in summary["entities"]] == [
        (e.kind, e.iid, e.outcome) for e in result.entities
    ]
    assert sorted(summary["documentIds"]) == sorted(d for e in result.entities for d in e.document_ids)
    assert summary["embedDocumentIds"] == summary["documentIds"]
    assert rows(engine.db.path, "app_locks") == []


async def test_dependent_failure_is_partial_not_fatal(engine: Engine, sim: SimServer) -> None:
    sim.control.add_fault(r"^/api/v4/projects/1/issues/2/discussions$", statuses=[500], times=1000)
    result = await run_surgical_sync(engine, surgical(issues=[1, 2, 3], mrs=[1]))

    assert result.status == "partial" and result.phase == "done" and result.failed_phase is None
    assert [(f.kind, f.iid, f.stage, f.code, f.http_status, f.retryable) for f in result.entity_failures] == [
        ("issue", 2, "discussions", "GITLAB_UNAVAILABLE", 500, True)
    ]
    by_target = {(e.kind, e.iid): e for e in result.entities}
    broken = by_target[("issue", 2)]
    assert broken.outcome == "ingested" and broken.dependents == {"discussions": "failed", "events": "synced"}
    assert broken.document_ids, "the issue itself still got its document"
    for target in [("issue", 1), ("issue", 3), ("mr", 1)]:
        entity = by_target[target]
        assert entity.outcome == "ingested" and "failed" not in entity.dependents.values()
    assert result.counters.dependent_jobs_failed == 1
    assert stored_run(engine.db.path, result.run_id).status == "partial"

    retry = next(a for a in result.recovery_actions if a.kind == "retryFailedEntities")
    assert retry.request is not None and retry.request.method == "lore/syncSurgical"
    assert retry.request.params == {"project": PROJECT, "issues": [2]}
    assert retry.command == "lore sync -p group/project --issue 2"

    # Executing the action as it is, once GitLab recovered, completes the entity.
    sim.control.clear_faults()
    params = msgspec.convert(retry.request.params, protocol.SyncSurgicalParams)
    again = await run_surgical_sync(engine, params)
    assert again.status == "succeeded"
    assert [(e.iid, e.outcome, e.dependents["discussions"]) for e in again.entities] == [
        (2, "unchanged", "synced")
    ]
    truth = sim.control.dump(PROJECT)["discussions"]["issues"]
    assert _discussion_count(engine.db.path, 2) == len(truth.get("2", truth.get(2, [])))


async def test_second_run_of_unchanged_targets_regenerates_nothing(engine: Engine, sim: SimServer) -> None:
    first = await run_surgical_sync(engine, surgical(issues=[5], mrs=[6]))
    second = await run_surgical_sync(engine, surgical(issues=[5], mrs=[6]))
    assert [e.outcome for e in second.entities] == ["unchanged", "unchanged"]
    assert all(set(e.dependents.values()) == {"unchanged"} for e in second.entities), "dependents refreshed"
    assert second.counters.documents_regenerated == 0 and first.counters.documents_regenerated > 0
    assert stored_run(engine.db.path, second.run_id).surgical_summary["embedDocumentIds"] == []  # type: ignore[index]
