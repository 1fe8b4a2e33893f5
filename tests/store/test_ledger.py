"""The run ledger (sync_runs) on a real SQLite file: lifecycle, filters, abandonment, suggestions."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable

import apsw
import msgspec

from lore_daemon import protocol
from lore_daemon.protocol import Counters, EntityFailure, RequestedTargets, RobotError
from lore_daemon.store import ledger
from lore_daemon.timeutil import ms_to_datetime

T0 = 1_700_000_000_000


def _start(
    conn: apsw.Connection, run_id: str, *, now: int = T0, mode: str = "surgical", **kw: object
) -> None:
    ledger.start_run(
        conn,
        run_id=run_id,
        mode=mode,  # type: ignore[arg-type]
        phase=kw.pop("phase", "preflight" if mode == "surgical" else "ingest"),  # type: ignore[arg-type]
        project=kw.pop("project", "group/proj"),  # type: ignore[arg-type]
        requested=kw.pop("requested", RequestedTargets(issues=[3, 4], mrs=[7])),  # type: ignore[arg-type]
        owner="host:1:abcd",
        pid=4242,
        now_ms=now,
    )


def _raw(conn: apsw.Connection, run_id: str, column: str) -> object:
    row = conn.execute(
        "SELECT " + column + " FROM sync_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    assert row is not None
    return row[0]


FAILURE = EntityFailure(kind="issue", iid=4, stage="discussions", code="GITLAB_UNAVAILABLE",
                        message="503 from GitLab", http_status=503, retryable=True)


def test_start_update_finish_round_trip(conn: apsw.Connection) -> None:
    _start(conn, "r1")
    run = ledger.get_run(conn, "r1")
    assert run is not None
    assert (run.status, run.phase, run.mode) == ("running", "preflight", "surgical")
    assert run.project == "group/proj"
    assert run.started_at == ms_to_datetime(T0) and run.heartbeat_at == ms_to_datetime(T0)
    assert run.requested == RequestedTargets(issues=[3, 4], mrs=[7])
    assert run.suggested_retry is None and run.owner == "host:1:abcd"

    counters = Counters(issues_fetched=2, mrs_fetched=1, issues_ingested=2)
    assert ledger.update_run(conn, "r1", now_ms=T0 + 50, phase="dependents", counters=counters,
                             stage_timings_ms={"preflight": 12, "ingest": 30}, failures=[FAILURE])
    run = ledger.get_run(conn, "r1")
    assert run is not None
    assert run.phase == "dependents" and run.counters == counters
    assert run.heartbeat_at == ms_to_datetime(T0 + 50)
    assert run.failures == [FAILURE]

    # Fields not passed are left alone; the heartbeat moves.
    assert ledger.update_run(conn, "r1", now_ms=T0 + 60, phase="docs")
    run = ledger.get_run(conn, "r1")
    assert run is not None and run.counters == counters and run.failures == [FAILURE]

    summary = {"noEmbed": False, "touchedKeys": 5}
    assert ledger.finish_run(conn, "r1", status="partial", now_ms=T0 + 100,
                             stage_timings_ms={"preflight": 12, "ingest": 30, "docs": 4},
                             surgical_summary=summary)
    run = ledger.get_run(conn, "r1")
    assert run is not None
    assert (run.status, run.phase, run.failed_phase) == ("partial", "done", None)
    assert run.finished_at == ms_to_datetime(T0 + 100) and run.cancelled_at is None
    assert run.stage_timings_ms == {"preflight": 12, "ingest": 30, "docs": 4}
    assert run.surgical_summary == summary

    # JSON columns are camelCase, like the wire.
    assert json.loads(str(_raw(conn, "r1", "counters_json")))["issuesFetched"] == 2
    assert json.loads(str(_raw(conn, "r1", "failures_json")))[0]["httpStatus"] == 503
    assert "issueUrls" in json.loads(str(_raw(conn, "r1", "requested_json")))


def test_failed_keeps_failed_phase_and_error(conn: apsw.Connection) -> None:
    _start(conn, "r1")
    ledger.update_run(conn, "r1", now_ms=T0 + 1, phase="ingest")
    error = RobotError(code="DB_ERROR", message="disk I/O error", suggestion="check disk", retryable=True)
    assert ledger.finish_run(conn, "r1", status="failed", now_ms=T0 + 2, error=error)
    run = ledger.get_run(conn, "r1")
    assert run is not None
    assert (run.status, run.phase, run.failed_phase) == ("failed", "failed", "ingest")
    assert run.error == error

    _start(conn, "r2")
    assert ledger.finish_run(conn, "r2", status="failed", now_ms=T0 + 2, failed_phase="preflight")
    run2 = ledger.get_run(conn, "r2")
    assert run2 is not None and run2.failed_phase == "preflight"


def test_cancelled_records_cancelled_at_and_where_it_stopped(conn: apsw.Connection) -> None:
    _start(conn, "r1")
    ledger.update_run(conn, "r1", now_ms=T0 + 1, phase="dependents")
    assert ledger.finish_run(conn, "r1", status="cancelled", now_ms=T0 + 9)
    run = ledger.get_run(conn, "r1")
    assert run is not None
    assert (run.status, run.phase, run.failed_phase) == ("cancelled", "failed", "dependents")
    assert run.cancelled_at == ms_to_datetime(T0 + 9) and run.finished_at == ms_to_datetime(T0 + 9)
    assert run.error is not None and run.error.code == "CANCELLED" and run.error.retryable


def test_terminal_rows_are_not_rewritten(conn: apsw.Connection) -> None:
    _start(conn, "r1")
    assert ledger.finish_run(conn, "r1", status="succeeded", now_ms=T0 + 5)
    assert not ledger.update_run(conn, "r1", now_ms=T0 + 6, phase="ingest")
    assert not ledger.heartbeat_run(conn, "r1", now_ms=T0 + 6)
    assert not ledger.finish_run(conn, "r1", status="failed", now_ms=T0 + 7)
    run = ledger.get_run(conn, "r1")
    assert run is not None
    assert (run.status, run.phase, run.finished_at) == ("succeeded", "done", ms_to_datetime(T0 + 5))
    assert not ledger.heartbeat_run(conn, "nope", now_ms=T0)
    assert ledger.get_run(conn, "nope") is None


def test_list_runs_newest_first_with_filters(conn: apsw.Connection) -> None:
    _start(conn, "a", now=T0)
    _start(conn, "b", now=T0 + 10)
    _start(conn, "c", now=T0 + 10)  # same start as b: the later insert comes first
    _start(conn, "d", now=T0 + 20, mode="standard", project=None, requested=RequestedTargets())
    ledger.finish_run(conn, "a", status="failed", now_ms=T0 + 30)
    ledger.finish_run(conn, "c", status="failed", now_ms=T0 + 30)
    ledger.finish_run(conn, "d", status="succeeded", now_ms=T0 + 30)

    assert [r.run_id for r in ledger.list_runs(conn)] == ["d", "c", "b", "a"]
    assert [r.run_id for r in ledger.list_runs(conn, limit=2)] == ["d", "c"]
    assert [r.run_id for r in ledger.list_runs(conn, status="failed")] == ["c", "a"]
    assert [r.run_id for r in ledger.list_runs(conn, status="running")] == ["b"]
    assert [r.run_id for r in ledger.list_runs(conn, run_id="b")] == ["b"]
    assert ledger.list_runs(conn, run_id="b", status="failed") == []
    assert ledger.list_runs(conn, run_id="zzz") == []


def test_list_runs_over_10000_rows_uses_the_indexes(
    conn: apsw.Connection, traced_plans: Callable[..., list[str]]
) -> None:
    with conn:  # one transaction: each start_run becomes a savepoint
        for i in range(10_000):
            _start(conn, f"run-{i:05d}", now=T0 + i)
            if i % 3 == 0:
                ledger.finish_run(conn, f"run-{i:05d}", status="failed", now_ms=T0 + i + 1)
    newest = ledger.list_runs(conn, limit=20)
    assert [r.run_id for r in newest] == [f"run-{i:05d}" for i in range(9_999, 9_979, -1)]
    failed = ledger.list_runs(conn, limit=20, status="failed")
    assert len(failed) == 20 and all(r.status == "failed" for r in failed)
    assert failed[0].run_id == "run-09999"

    [plain] = traced_plans(conn, lambda: ledger.list_runs(conn, limit=20))
    assert "USING INDEX sync_runs_started" in plain
    [by_status] = traced_plans(conn, lambda: ledger.list_runs(conn, limit=20, status="failed"))
    assert "USING INDEX sync_runs_status_started" in by_status
    [by_id] = traced_plans(conn, lambda: ledger.list_runs(conn, run_id="run-00005"))
    assert "USING INDEX sqlite_autoindex_sync_runs_1" in by_id


def test_mark_abandoned_closes_only_stale_running_rows(conn: apsw.Connection) -> None:
    stale_ms = 1_000
    _start(conn, "dead", now=T0)
    ledger.update_run(conn, "dead", now_ms=T0 + 10, phase="dependents")
    _start(conn, "alive", now=T0)
    ledger.heartbeat_run(conn, "alive", now_ms=T0 + 2_000)
    _start(conn, "old-done", now=T0)
    ledger.finish_run(conn, "old-done", status="succeeded", now_ms=T0 + 10)

    closed = ledger.mark_abandoned(conn, stale_ms=stale_ms, now_ms=T0 + 2_500)
    assert closed == ["dead"]
    dead = ledger.get_run(conn, "dead")
    assert dead is not None
    assert (dead.status, dead.phase, dead.failed_phase) == ("failed", "failed", "dependents")
    assert dead.finished_at == ms_to_datetime(T0 + 2_500)
    assert dead.error is not None and dead.error.code == "ABANDONED" and dead.error.retryable
    assert dead.error.details["lastHeartbeatAt"] == T0 + 10 and dead.error.details["pid"] == 4242
    assert [a.kind for a in dead.error.actions] == ["retryRun"]
    alive, done = ledger.get_run(conn, "alive"), ledger.get_run(conn, "old-done")
    assert alive is not None and alive.status == "running"
    assert done is not None and done.status == "succeeded"
    # Nothing more to close; a heartbeat on the closed run cannot resurrect it.
    assert ledger.mark_abandoned(conn, stale_ms=stale_ms, now_ms=T0 + 2_500) == []
    assert not ledger.heartbeat_run(conn, "dead", now_ms=T0 + 2_600)


def test_mark_abandoned_only_run_id(conn: apsw.Connection) -> None:
    _start(conn, "x", now=T0)
    _start(conn, "y", now=T0)
    assert ledger.mark_abandoned(conn, stale_ms=10, now_ms=T0 + 100, only_run_id="y") == ["y"]
    x = ledger.get_run(conn, "x")
    assert x is not None and x.status == "running"


def test_abandon_run_on_lock_takeover_ignores_the_runs_own_heartbeat(conn: apsw.Connection) -> None:
    _start(conn, "r", now=T0)
    ledger.update_run(conn, "r", now_ms=T0 + 900, phase="docs")  # fresher than its lock heartbeat
    assert ledger.abandon_run(conn, "r", now_ms=T0 + 1_000, lock="sync", lock_heartbeat_at=T0 + 100)
    run = ledger.get_run(conn, "r")
    assert run is not None and (run.status, run.failed_phase) == ("failed", "docs")
    assert run.error is not None and run.error.code == "ABANDONED"
    assert run.error.details["lock"] == "sync" and run.error.details["lockHeartbeatAt"] == T0 + 100
    assert "sync lock went stale" in run.error.message
    # Already closed: a second takeover finds nothing to close.
    assert not ledger.abandon_run(conn, "r", now_ms=T0 + 2_000, lock="sync", lock_heartbeat_at=T0)


def test_suggested_retry_for_failed_partial_and_cancelled(conn: apsw.Connection) -> None:
    _start(conn, "ok")
    ledger.finish_run(conn, "ok", status="succeeded", now_ms=T0 + 1)
    _start(conn, "failed")
    ledger.finish_run(conn, "failed", status="failed", now_ms=T0 + 1, failed_phase="preflight")
    _start(conn, "partial")
    ledger.finish_run(conn, "partial", status="partial", now_ms=T0 + 1, failures=[
        FAILURE, msgspec.structs.replace(FAILURE, stage="events"),
        EntityFailure(kind="mr", iid=7, stage="diffs", code="GITLAB_UNAVAILABLE", message="timeout"),
    ])
    _start(conn, "std", mode="standard", project=None, requested=RequestedTargets(projects=["g/a", "g/b"]))
    ledger.finish_run(conn, "std", status="cancelled", now_ms=T0 + 1)

    ok = ledger.get_run(conn, "ok")
    assert ok is not None and ok.suggested_retry is None and ok.suggested_retry_command is None

    failed = ledger.get_run(conn, "failed")
    assert failed is not None and failed.suggested_retry is not None
    assert failed.suggested_retry.kind == "retryRun"
    assert failed.suggested_retry_command == "lore sync -p group/proj --issue 3 --issue 4 --mr 7"
    assert failed.suggested_retry.request is not None
    params = msgspec.convert(failed.suggested_retry.request.params, protocol.SyncSurgicalParams)
    assert (params.project, params.issues, params.mrs) == ("group/proj", [3, 4], [7])

    partial = ledger.get_run(conn, "partial")
    assert partial is not None and partial.suggested_retry is not None
    assert partial.suggested_retry.kind == "retryFailedEntities"
    assert partial.suggested_retry.request is not None
    assert partial.suggested_retry.request.params == {"project": "group/proj", "issues": [4], "mrs": [7]}
    assert shlex.split(partial.suggested_retry_command or "") == [
        "lore", "sync", "-p", "group/proj", "--issue", "4", "--mr", "7"
    ]

    std = ledger.get_run(conn, "std")
    assert std is not None and std.suggested_retry is not None
    assert std.suggested_retry.request is not None
    assert std.suggested_retry.request.method == "lore/sync"
    assert msgspec.convert(std.suggested_retry.request.params, protocol.SyncParams).projects == ["g/a", "g/b"]
    assert [r.run_id for r in ledger.list_runs(conn, status="cancelled")] == ["std"]
    assert ledger.list_runs(conn, status="cancelled")[0].suggested_retry == std.suggested_retry
