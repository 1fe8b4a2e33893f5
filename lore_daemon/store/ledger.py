"""The run ledger (``sync_runs``): one recorder for standard and surgical runs.

Every function opens its own short ``with conn:`` transaction (``BEGIN IMMEDIATE`` on the writer
connection) so a ledger write lands at once — even during preflight, which otherwise writes
nothing — and a crash can never lose it. Call them *outside* any other transaction: inside one they
become a savepoint and commit only with it. Nested inside another ledger/lock call (as
``locks.try_acquire`` does) that is exactly what is wanted.

Phases and statuses (docs/surgical-sync.md, invariants 10 and 11; docs/operations.md):

* ``running`` while the run is alive; ``heartbeat_at`` is refreshed by every update.
* ``succeeded`` / ``partial`` → phase ``done``.
* ``failed`` → phase ``failed``; ``failed_phase`` keeps the phase it stopped in.
* ``cancelled`` → phase ``failed`` too (the pipeline did not reach ``done``), ``failed_phase`` where
  it stopped, and ``cancelled_at``; the error defaults to code ``CANCELLED``.
* A ``running`` row whose heartbeat is older than ``stale_ms`` belongs to a dead process:
  ``mark_abandoned`` turns it into ``failed`` with code ``ABANDONED`` and keeps its phase.

Writes to a row that is no longer ``running`` are ignored (they return False): once a takeover
has declared a run abandoned, a process that wakes up late cannot resurrect it.

JSON columns hold the protocol Structs encoded by msgspec, so they are camelCase like the wire.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import apsw
import msgspec

from lore_daemon import recovery
from lore_daemon.errors import StoreError
from lore_daemon.protocol import (
    Counters,
    EntityFailure,
    RequestedTargets,
    RobotError,
    RunMode,
    RunPhase,
    RunStatus,
    SyncRun,
)
from lore_daemon.timeutil import ms_to_datetime, ms_to_iso

FinalStatus = Literal["succeeded", "partial", "failed", "cancelled"]

_T = TypeVar("_T")
_encoder = msgspec.json.Encoder()

# The same column list, in this order, starts every SELECT below (``_row_to_run`` unpacks it).
# The queries are spelt out whole so each is a constant SQL string.


def _json(value: object | None) -> str | None:
    return None if value is None else _encoder.encode(value).decode()


def start_run(
    conn: apsw.Connection,
    *,
    run_id: str,
    mode: RunMode,
    phase: RunPhase,
    project: str | None,
    requested: RequestedTargets,
    owner: str,
    pid: int,
    now_ms: int,
) -> None:
    """Insert the run's row: status ``running``, started and heartbeated now."""
    with conn:
        conn.execute(
            "INSERT INTO sync_runs (run_id, mode, phase, status, project, requested_json, started_at, "
            "heartbeat_at, counters_json, owner, pid) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
            (run_id, mode, phase, project, _json(requested), now_ms, now_ms, _json(Counters()), owner, pid),
        )


def update_run(
    conn: apsw.Connection,
    run_id: str,
    *,
    now_ms: int,
    phase: RunPhase | None = None,
    counters: Counters | None = None,
    stage_timings_ms: dict[str, int] | None = None,
    failures: list[EntityFailure] | None = None,
    error: RobotError | None = None,
    surgical_summary: dict[str, Any] | None = None,
) -> bool:
    """Replace the given fields (None = leave as is) and heartbeat. False if the run is not running.

    Lists and maps are replaced whole, not merged: pass the run's complete failures and timings.
    """
    with conn:
        conn.execute(
            "UPDATE sync_runs SET heartbeat_at = ?, phase = COALESCE(?, phase), "
            "counters_json = COALESCE(?, counters_json), "
            "stage_timings_json = COALESCE(?, stage_timings_json), "
            "failures_json = COALESCE(?, failures_json), error_json = COALESCE(?, error_json), "
            "surgical_summary_json = COALESCE(?, surgical_summary_json) "
            "WHERE run_id = ? AND status = 'running'",
            (
                now_ms, phase, _json(counters), _json(stage_timings_ms), _json(failures), _json(error),
                _json(surgical_summary), run_id,
            ),
        )
        changed = conn.changes() > 0
    return changed


def heartbeat_run(conn: apsw.Connection, run_id: str, *, now_ms: int) -> bool:
    """Prove the run's process is alive. False if the row is no longer running (or unknown)."""
    with conn:
        conn.execute(
            "UPDATE sync_runs SET heartbeat_at = ? WHERE run_id = ? AND status = 'running'", (now_ms, run_id)
        )
        changed = conn.changes() > 0
    return changed


def _cancelled_error() -> RobotError:
    return RobotError(
        code="CANCELLED",
        message="The run was cancelled by the client, a disconnect or SIGTERM.",
        suggestion="Retry the run when ready.",
        retryable=True,
    )


def finish_run(
    conn: apsw.Connection,
    run_id: str,
    *,
    status: FinalStatus,
    now_ms: int,
    failed_phase: RunPhase | None = None,
    counters: Counters | None = None,
    stage_timings_ms: dict[str, int] | None = None,
    failures: list[EntityFailure] | None = None,
    error: RobotError | None = None,
    surgical_summary: dict[str, Any] | None = None,
) -> bool:
    """Write the terminal state (see the module docstring for phases). False if not running.

    For ``failed`` and ``cancelled``, ``failed_phase`` defaults to the phase the row is in.
    """
    if status == "cancelled" and error is None:
        error = _cancelled_error()
    stopped = status in ("failed", "cancelled")
    with conn:
        conn.execute(
            "UPDATE sync_runs SET status = ?, finished_at = ?, heartbeat_at = ?, "
            "phase = CASE WHEN ? THEN 'failed' ELSE 'done' END, "
            "failed_phase = CASE WHEN ? THEN COALESCE(?, CASE WHEN phase IN ('done', 'failed') "
            "THEN failed_phase ELSE phase END) ELSE NULL END, "
            "cancelled_at = CASE WHEN ? = 'cancelled' THEN ? ELSE cancelled_at END, "
            "counters_json = COALESCE(?, counters_json), "
            "stage_timings_json = COALESCE(?, stage_timings_json), "
            "failures_json = COALESCE(?, failures_json), error_json = COALESCE(?, error_json), "
            "surgical_summary_json = COALESCE(?, surgical_summary_json) "
            "WHERE run_id = ? AND status = 'running'",
            (
                status, now_ms, now_ms, stopped, stopped, failed_phase, status, now_ms,
                _json(counters), _json(stage_timings_ms), _json(failures), _json(error),
                _json(surgical_summary), run_id,
            ),
        )
        changed = conn.changes() > 0
    return changed


_SELECT_RUNNING_FOR_ABANDON = (
    "SELECT run_id, mode, phase, failed_phase, status, project, requested_json, started_at, "
    "heartbeat_at, finished_at, cancelled_at, counters_json, stage_timings_json, failures_json, "
    "error_json, surgical_summary_json, owner, pid FROM sync_runs "
    "WHERE status = 'running' AND heartbeat_at < ? AND (? IS NULL OR run_id = ?)"
)


_ANY_HEARTBEAT = 2**63 - 1  # a cutoff every heartbeat is below


def _abandoned_error(run: SyncRun, heartbeat_ms: int, pid: int, now_ms: int, cause: str) -> RobotError:
    age_s = (now_ms - heartbeat_ms) / 1000
    return RobotError(
        code="ABANDONED",
        message=(
            f"Run {run.run_id} stopped during phase {run.phase}: {cause} "
            f"(last heartbeat {ms_to_iso(heartbeat_ms)}, {age_s:.1f} s before it was found). "
            "Its process is presumed dead."
        ),
        suggestion="Retry the run. What it committed before dying is kept; no transaction is half-applied.",
        retryable=True,
        actions=[recovery.retry_run_action(run)],
        details={"phase": run.phase, "owner": run.owner, "pid": pid, "lastHeartbeatAt": heartbeat_ms},
    )


def _abandon(
    conn: apsw.Connection, row: tuple[Any, ...], now_ms: int, cause: str, extra: dict[str, Any]
) -> bool:
    """Close one selected running row as ABANDONED (inside the caller's transaction)."""
    run = _row_to_run(row[:-1])
    heartbeat_ms, pid = int(row[8]), int(row[-1])
    error = _abandoned_error(run, heartbeat_ms, pid, now_ms, cause)
    error.details.update(extra)
    conn.execute(
        "UPDATE sync_runs SET status = 'failed', phase = 'failed', failed_phase = phase, "
        "finished_at = ?, error_json = ? WHERE run_id = ? AND status = 'running' AND heartbeat_at = ?",
        (now_ms, _json(error), run.run_id, heartbeat_ms),
    )
    return conn.changes() > 0


def mark_abandoned(
    conn: apsw.Connection, *, stale_ms: int, now_ms: int, only_run_id: str | None = None
) -> list[str]:
    """Close every ``running`` run whose heartbeat is older than ``stale_ms`` (its process died).

    Each becomes ``failed`` with ``failed_phase`` = the phase it died in and error ``ABANDONED``
    (retryable, with a ``retryRun`` action). ``only_run_id`` limits this to one run. The daemon
    calls it at start; a lock takeover uses ``abandon_run`` instead. Returns the run ids closed.
    """
    cause = f"its heartbeat is more than {stale_ms} ms old"
    with conn:
        rows = conn.execute(
            _SELECT_RUNNING_FOR_ABANDON, (now_ms - stale_ms, only_run_id, only_run_id)
        ).fetchall()
        closed = [str(row[0]) for row in rows if _abandon(conn, row, now_ms, cause, {})]
    return closed


def abandon_run(
    conn: apsw.Connection, run_id: str, *, now_ms: int, lock: str, lock_heartbeat_at: int
) -> bool:
    """Close one ``running`` run as ABANDONED because its ``lock`` went stale and was taken over.

    The stale lock heartbeat is the evidence, whatever the run's own heartbeat says: the lock
    heartbeat beats the run too, so a stale lock means the holder stopped (or lost the lock and
    must not write on). Returns False if the run was not running.
    """
    cause = f"its {lock} lock went stale and was taken over"
    extra = {"lock": lock, "lockHeartbeatAt": lock_heartbeat_at}
    with conn:
        row = conn.execute(_SELECT_RUNNING_FOR_ABANDON, (_ANY_HEARTBEAT, run_id, run_id)).fetchone()
        closed = row is not None and _abandon(conn, row, now_ms, cause, extra)
    return closed


def _decode(text: Any, kind: type[_T], run_id: str, column: str) -> _T:
    try:
        return msgspec.json.decode(text, type=kind)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise StoreError(
            f"Run {run_id}: column {column} holds JSON this version cannot read: {exc}",
            "DB_ERROR",
            "The ledger row is damaged; other runs are unaffected.",
            details={"runId": run_id, "column": column},
        ) from exc


def _ms(value: Any) -> Any:
    return None if value is None else ms_to_datetime(int(value))


def _row_to_run(row: tuple[Any, ...]) -> SyncRun:
    (
        run_id, mode, phase, failed_phase, status, project, requested, started_at, heartbeat_at,
        finished_at, cancelled_at, counters, timings, failures, error, summary, owner,
    ) = row
    rid = str(run_id)
    return SyncRun(
        run_id=rid,
        mode=mode,
        phase=phase,
        status=status,
        failed_phase=failed_phase,
        started_at=ms_to_datetime(int(started_at)),
        heartbeat_at=_ms(heartbeat_at),
        finished_at=_ms(finished_at),
        cancelled_at=_ms(cancelled_at),
        project=project,
        requested=_decode(requested, RequestedTargets, rid, "requested_json"),
        counters=_decode(counters, Counters, rid, "counters_json"),
        stage_timings_ms=_decode(timings, dict[str, int], rid, "stage_timings_json"),
        failures=_decode(failures, list[EntityFailure], rid, "failures_json"),
        error=None if error is None else _decode(error, RobotError, rid, "error_json"),
        surgical_summary=(
            None if summary is None else _decode(summary, dict[str, Any], rid, "surgical_summary_json")
        ),
        owner=owner,
    )


def _with_suggestion(run: SyncRun) -> SyncRun:
    action = recovery.suggested_retry(run)
    if action is not None:
        run.suggested_retry = action
        run.suggested_retry_command = action.command
    return run


def get_run(conn: apsw.Connection, run_id: str) -> SyncRun | None:
    """One run with its suggested retry (for failed, partial and cancelled runs), or None."""
    row = conn.execute(
        "SELECT run_id, mode, phase, failed_phase, status, project, requested_json, started_at, "
        "heartbeat_at, finished_at, cancelled_at, counters_json, stage_timings_json, failures_json, "
        "error_json, surgical_summary_json, owner FROM sync_runs "
        "WHERE run_id = ?",
        (run_id,),
    ).fetchone()
    return None if row is None else _with_suggestion(_row_to_run(row))


def list_runs(
    conn: apsw.Connection, *, limit: int = 20, run_id: str | None = None, status: RunStatus | None = None
) -> list[SyncRun]:
    """Runs newest first (``started_at`` DESC, then insertion order DESC), with optional filters.

    Each filter shape has its own constant query so SQLite picks the matching index
    (``sync_runs_started`` / ``sync_runs_status_started`` / the primary key) and stops after
    ``limit`` rows however large the ledger grows.
    """
    if run_id is not None:
        # The primary key answers at most one row; the status filter still applies to it.
        rows = conn.execute(
            "SELECT run_id, mode, phase, failed_phase, status, project, requested_json, started_at, "
            "heartbeat_at, finished_at, cancelled_at, counters_json, stage_timings_json, failures_json, "
            "error_json, surgical_summary_json, owner FROM sync_runs "
            "WHERE run_id = ? AND (? IS NULL OR status = ?) LIMIT ?",
            (run_id, status, status, limit),
        )
    elif status is not None:
        rows = conn.execute(
            "SELECT run_id, mode, phase, failed_phase, status, project, requested_json, started_at, "
            "heartbeat_at, finished_at, cancelled_at, counters_json, stage_timings_json, failures_json, "
            "error_json, surgical_summary_json, owner FROM sync_runs "
            "WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (status, limit),
        )
    else:
        rows = conn.execute(
            "SELECT run_id, mode, phase, failed_phase, status, project, requested_json, started_at, "
            "heartbeat_at, finished_at, cancelled_at, counters_json, stage_timings_json, failures_json, "
            "error_json, surgical_summary_json, owner FROM sync_runs "
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
    return [_with_suggestion(_row_to_run(row)) for row in rows]
