"""Standard sync, phase ``dependents``: drain ``pending_dependent_fetches``.

A pipeline: jobs are claimed in batches (owner = this daemon), grouped per parent entity and
fetched concurrently — every fetch goes through the GitLab client's shared in-flight limit — while
the writer thread stores whatever has arrived, one transaction per job (``write_dependents`` +
``complete_job``, which deletes the row). A stage that failed to fetch calls ``fail_job`` (attempts
+1, exponential ``next_retry_at``) and becomes an ``EntityFailure``; the run then ends ``partial``.

Watermarks keep the work minimal: the enqueue side only queues dependents whose watermark is behind
the parent, and a claimed job whose watermark already reached its target (or whose parent row is
gone) is completed at claim time without a request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import apsw

from lore_daemon.store import queue
from lore_daemon.store.entities import LocalEntityState, local_states_by_iid
from lore_daemon.store.keys import kind_of
from lore_daemon.store.queue import DependentJob
from lore_daemon.sync.batched import write_in_groups
from lore_daemon.sync.context import RunCancelled, RunContext
from lore_daemon.sync.dependents import (
    STAGE_FOR_JOB_TYPE,
    WATERMARK_FOR_STAGE,
    FetchedDependents,
    fetch_dependents,
)
from lore_daemon.sync.drain_groups import EntityWork, Unit, WriteResult, write_group, write_job
from lore_daemon.sync.locking import HeldLock
from lore_daemon.sync.write_clock import WriteClock
from lore_daemon.timeutil import now_ms
from lore_daemon.tuning import Tuning

CLAIM_BATCH = 200  # jobs per claim
LOW_WATER = 50  # claim more when fewer parents than this are being fetched
TRANSACTION_BUDGET_S = 0.05


@dataclass
class Claimed:
    work: list[EntityWork]
    claimed: int
    satisfied: int


def _claim(conn: apsw.Connection, owner: str, limit: int, stale_claim_ms: int) -> Claimed:
    """Claim a batch; complete at once the jobs with nothing to do; group the rest by parent."""
    by_parent: dict[tuple[int, str, int], list[DependentJob]] = {}
    work: list[EntityWork] = []
    satisfied = 0
    with conn:
        jobs = queue.claim_jobs(
            conn, owner=owner, now_ms=now_ms(), limit=limit, stale_claim_ms=stale_claim_ms
        )
        for job in jobs:
            by_parent.setdefault((job.project_id, job.entity_type, job.entity_iid), []).append(job)
        locals_ = _local_states(conn, by_parent)
        for (project_id, entity_type, iid), parent_jobs in by_parent.items():
            kind = kind_of(entity_type)
            local = locals_.get((project_id, entity_type, iid))
            todo = EntityWork(project_id, kind, iid, parent_jobs[0].entity_id, 0)
            for job in parent_jobs:
                if local is None or local.gitlab_id != job.entity_id:
                    queue.complete_job(conn, job.id, owner=owner)  # the parent is gone or was replaced
                    satisfied += 1
                    continue
                todo.fallback_updated_at = local.updated_at_ms
                target = job.target_updated_at if job.target_updated_at is not None else local.updated_at_ms
                mark = local.watermarks.get(WATERMARK_FOR_STAGE[STAGE_FOR_JOB_TYPE[job.job_type]])
                if mark is not None and mark >= target:
                    queue.complete_job(conn, job.id, owner=owner)  # already synced for this version
                    satisfied += 1
                    continue
                todo.jobs.append(job)
            if todo.jobs:
                work.append(todo)
    return Claimed(work, len(jobs), satisfied)


def _local_states(
    conn: apsw.Connection, parents: dict[tuple[int, str, int], list[DependentJob]]
) -> dict[tuple[int, str, int], LocalEntityState]:
    """The local state of every claimed parent: one query per project and entity type."""
    iids: dict[tuple[int, str], list[int]] = {}
    for project_id, entity_type, iid in parents:
        iids.setdefault((project_id, entity_type), []).append(iid)
    return {
        (project_id, entity_type, iid): state
        for (project_id, entity_type), wanted in iids.items()
        for iid, state in local_states_by_iid(conn, project_id, kind_of(entity_type), wanted).items()
    }


def _write_results(
    conn: apsw.Connection, ctx: RunContext, owner: str, results: list[tuple[EntityWork, FetchedDependents]]
) -> WriteResult:
    """Store fetched dependents; failed stages back off.

    Jobs go in groups of up to ``Tuning.jobs_per_transaction``, one transaction each, written together
    (``drain_groups.write_group``: a handful of statements for the whole group). If anything in a
    group raises, that transaction rolls back and the group is written again job by job, each job
    atomic on its own — its writes and its ``complete_job``/``fail_job`` in one SAVEPOINT — with
    several jobs per commit (``sync/batched.py``): the jobs before a failing one are committed,
    the failing one leaves nothing, then its error ends the run. The cancel flag is checked before
    every group (and before every job of a group written job by job); the run stops there, with
    everything before it committed.
    """
    out = WriteResult()
    units = [(work, fetched, job) for work, fetched in results for job in work.jobs]
    per_transaction = ctx.tuning.jobs_per_transaction
    for start in range(0, len(units), per_transaction):
        if ctx.cancel_event.is_set():
            break
        group = units[start:start + per_transaction]
        written = WriteResult()
        try:
            with conn:
                write_group(conn, owner, group, written)
        except Exception:  # rolled back whole: find the failing job by writing them one by one
            written = _write_one_by_one(conn, ctx, owner, group)
        out.add(written)
    ctx.check_cancelled()
    return out


def _write_one_by_one(conn: apsw.Connection, ctx: RunContext, owner: str, units: list[Unit]) -> WriteResult:
    out = WriteResult()
    group = WriteResult()  # the jobs of the open transaction, counted once it commits

    def committed() -> None:
        nonlocal group
        out.add(group)
        group = WriteResult()

    def lost() -> None:
        nonlocal group
        group = WriteResult()

    write_in_groups(
        conn, units, lambda unit: write_job(conn, owner, unit, group),
        per_transaction=ctx.tuning.jobs_per_transaction, budget_s=TRANSACTION_BUDGET_S,
        should_stop=ctx.cancel_event.is_set, on_group_committed=committed, on_group_lost=lost,
    )
    return out


def release_claims(conn: apsw.Connection, owner: str) -> int:
    """Unlock every job this daemon still holds (run ended early); safe outside a transaction."""
    with conn:
        released = queue.release_claims(conn, owner=owner)
    return released


async def drain_dependents(
    ctx: RunContext, held: HeldLock, clock: WriteClock, *, stale_claim_ms: int
) -> None:
    """Drain the queue until no job is due. Fetches run concurrently; writes are serial batches."""
    owner = ctx.engine.owner
    client = ctx.engine.gitlab
    arrived: asyncio.Queue[tuple[EntityWork, FetchedDependents | BaseException]] = asyncio.Queue()
    in_flight: set[asyncio.Task[None]] = set()

    async def fetch(work: EntityWork) -> None:
        stages = [STAGE_FOR_JOB_TYPE[job.job_type] for job in work.jobs]
        try:
            got: FetchedDependents | BaseException = await fetch_dependents(
                client, work.project_id, work.kind, work.iid, stages
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not a GitLab failure (those are inside FetchedDependents): a bug
            got = exc
        arrived.put_nowait((work, got))

    exhausted = False
    try:
        while True:
            if ctx.cancel_event.is_set():
                raise RunCancelled("The run was cancelled.", "CANCELLED", "Retry the run when ready.")
            held.ensure_held()
            if not exhausted and len(in_flight) < LOW_WATER:
                claimed = await clock.write(ctx, "dependents", _claim, owner, CLAIM_BATCH, stale_claim_ms)
                ctx.counters.dependent_jobs_done += claimed.satisfied
                exhausted = claimed.claimed == 0
                for work in claimed.work:
                    task = asyncio.create_task(fetch(work))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if not claimed.work and not exhausted:
                    continue  # a batch of already-satisfied jobs: claim the next one
            if not in_flight and arrived.empty():
                return
            ready = await _gather_hop(arrived, in_flight, ctx.tuning)
            fetched: list[tuple[EntityWork, FetchedDependents]] = []
            for work, got in ready:
                if isinstance(got, BaseException):
                    raise got
                fetched.append((work, got))
            result = await clock.write(ctx, "dependents", _write_results, ctx, owner, fetched)
            _record(ctx, result)
    finally:
        for task in list(in_flight):
            task.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)


async def _gather_hop(
    arrived: asyncio.Queue[tuple[EntityWork, FetchedDependents | BaseException]],
    in_flight: set[asyncio.Task[None]],
    tuning: Tuning,
) -> list[tuple[EntityWork, FetchedDependents | BaseException]]:
    """The next writer hop: whatever has arrived, topped up to ``tuning.hop_parents`` parents
    for at most ``tuning.hop_gather_s``."""
    ready = [await arrived.get()]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + tuning.hop_gather_s
    while len(ready) < tuning.hop_parents and in_flight:
        if not arrived.empty():
            ready.append(arrived.get_nowait())
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            ready.append(await asyncio.wait_for(arrived.get(), remaining))
        except TimeoutError:
            break
    while not arrived.empty():
        ready.append(arrived.get_nowait())
    return ready


def _record(ctx: RunContext, result: WriteResult) -> None:
    ctx.counters.dependent_jobs_done += result.done
    ctx.counters.dependent_jobs_failed += len(result.failed)
    result.counts.add_to(ctx.counters)
    ctx.failures.extend(result.failed)
    ctx.report_throttled(
        f"{ctx.counters.dependent_jobs_done} dependent jobs done, "
        f"{ctx.counters.dependent_jobs_failed} failed"
    )
