"""The dependent-job writer's fast path: a whole group of jobs in a handful of statements.

Writing job by job costs a savepoint, a dirty mark, a job delete and several small statements
per job; for the discussions of a first sync that was most of the phase. Here the jobs of one
group are written together: every parent's discussions through one ``refresh_many`` (one
multi-row upsert of discussions, one of notes, one dirty mark for all), every parent's events
through one ``replace_events_many`` (per kind: one read, one upsert), the rarer MR stages and
failed fetches job by job as before, and every finished job deleted in one statement. The
caller runs this inside one transaction and, if anything raises, rolls the whole group back and
writes it again job by job (``drain_phase``), so a failing job is still isolated and the rest of
its group still lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from lore_daemon import protocol
from lore_daemon.store import queue
from lore_daemon.store.dependents import DependentName, ParentEvents, replace_events_many, set_watermark
from lore_daemon.store.discussions import ParentThreads, refresh_many
from lore_daemon.store.queue import DependentJob
from lore_daemon.sync.dependents import (
    STAGE_FOR_JOB_TYPE,
    DependentCounts,
    FetchedDependents,
    failure_of,
    settled_watermark,
    write_dependents,
)
from lore_daemon.timeutil import now_ms


@dataclass
class EntityWork:
    """The claimed jobs of one parent, fetched together."""

    project_id: int
    kind: protocol.EntityKind
    iid: int
    entity_id: int
    fallback_updated_at: int  # the parent's updated_at, for jobs without a target
    jobs: list[DependentJob] = field(default_factory=list)


@dataclass
class WriteResult:
    done: int = 0
    unsettled: int = 0  # jobs written from a fetch inside the settle window (watermark kept)
    failed: list[protocol.EntityFailure] = field(default_factory=list)
    counts: DependentCounts = field(default_factory=DependentCounts)

    def add(self, other: WriteResult) -> None:
        self.done += other.done
        self.unsettled += other.unsettled
        self.failed.extend(other.failed)
        self.counts.add(other.counts)


Unit = tuple[EntityWork, FetchedDependents, DependentJob]


def _target(unit: Unit) -> int:
    work, _, job = unit
    return job.target_updated_at or work.fallback_updated_at


def write_job(conn: apsw.Connection, owner: str, unit: Unit, into: WriteResult, settle_ms: int) -> None:
    """One job alone (inside the caller's savepoint): its stage's full refresh + ``complete_job``,
    or ``fail_job`` when its fetch failed."""
    if _write_or_fail(conn, owner, unit, into, settle_ms):
        queue.complete_job(conn, unit[2].id, owner=owner)


def _write_or_fail(conn: apsw.Connection, owner: str, unit: Unit, into: WriteResult, settle_ms: int) -> bool:
    """The job's stage written (True: the job is finished) or its failure recorded (False).

    A fetch inside the settle window is written too (it is the newest data there is) and its job
    finishes, but the watermark keeps its value: the next standard sync fetches it again
    (``drain_phase.enqueue_unsettled``)."""
    work, fetched, job = unit
    stage = STAGE_FOR_JOB_TYPE[job.job_type]
    now = now_ms()
    error = fetched.errors.get(stage)
    if error is not None:
        queue.fail_job(conn, job.id, owner=owner, error=f"{error.code}: {error.message}", now_ms=now)
        into.failed.append(failure_of(work.kind, work.iid, stage, error))
        return False
    settled = fetched.settled(_target(unit), settle_ms)
    written = write_dependents(
        conn, fetched, parent_id=work.entity_id,
        parent_updated_at_ms=settled_watermark(fetched, _target(unit), settle_ms),
        now_ms=now, stages=[stage],
    )
    into.add(WriteResult(counts=written.counts, done=1, unsettled=0 if settled else 1))
    return True


def write_group(
    conn: apsw.Connection, owner: str, units: list[Unit], into: WriteResult, settle_ms: int
) -> None:
    """Every job of ``units`` at once (inside the caller's transaction); same rows, same queue
    state and same counts as ``write_job`` for each in turn."""
    now = now_ms()
    threads: list[tuple[Unit, ParentThreads]] = []
    events: list[tuple[Unit, ParentEvents]] = []
    finished: list[int] = []
    for unit in units:
        work, fetched, job = unit
        stage = STAGE_FOR_JOB_TYPE[job.job_type]
        if stage in fetched.errors or stage not in ("discussions", "events"):
            if _write_or_fail(conn, owner, unit, into, settle_ms):  # rare stages and failures: job by job
                finished.append(job.id)
            continue
        payload = fetched.results[stage]
        if stage == "discussions":
            threads.append((unit, ParentThreads(fetched.project_id, fetched.kind, work.entity_id, payload)))
        else:
            events.append((unit, ParentEvents(fetched.project_id, fetched.kind, work.entity_id,
                                              payload.state, payload.label, payload.milestone)))
        finished.append(job.id)
    if threads:
        refreshed = refresh_many(conn, [parent for _, parent in threads], now_ms=now)
        for (unit, _), result in zip(threads, refreshed, strict=True):
            _advance(conn, unit, "discussions", settle_ms, into)
            into.counts.discussions += result.discussions
            into.counts.notes += result.notes
    if events:
        replaced = replace_events_many(conn, [parent for _, parent in events])
        for (unit, _), written in zip(events, replaced, strict=True):
            _advance(conn, unit, "events", settle_ms, into)
            into.counts.events += written.rows
    into.done += len(threads) + len(events)
    queue.complete_jobs(conn, finished, owner=owner)


def _advance(
    conn: apsw.Connection, unit: Unit, dependent: DependentName, settle_ms: int, into: WriteResult
) -> None:
    """The watermark moves to the job's target only when the fetch settled (``write_job``)."""
    work, fetched, _ = unit
    if fetched.settled(_target(unit), settle_ms):
        set_watermark(conn, fetched.kind, work.entity_id, dependent, _target(unit))
    else:
        into.unsettled += 1
