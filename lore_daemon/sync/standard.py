"""Standard sync (``lore/sync``): incremental ingest → dependent queue → documents → embeddings.

Shape of a run (docs/standard-sync.md, "A run, step by step"):

1. Resolve every project remotely (``get_project``) *before* the run exists: a token GitLab
   rejects or a project that is not there is a configuration problem, raised as a ``LoreError``
   (the request fails; no ledger row). Transient failures here still record a ``failed`` run.
2. Close runs of dead processes (``mark_abandoned``), write the ledger row (mode ``standard``,
   phase ``ingest``), and wait for the ``sync`` lock while heartbeating the row.
3. Under the lock: ``ingest`` (``ingest_phase``), ``dependents`` (``drain_phase``), ``docs``.
   The lock's heartbeat keeps the ledger row alive.
4. Release the lock, then ``embed`` (``docs_phase``).

Exits: ``succeeded``, or ``partial`` when some dependent jobs or embeddings failed; a GitLab/DB
failure ends the run ``failed`` with its error and the phase it stopped in, returned as a
``SyncResult``.
Cancellation (task cancelled, or ``ctx.cancel_event`` set) rolls back the open item transaction,
releases the queue claims and the lock, records ``cancelled`` and re-raises ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import functools
import logging

import apsw
import msgspec

from lore_daemon import protocol, recovery
from lore_daemon.engine import Engine, ProgressSink, discard_progress
from lore_daemon.errors import (
    ConfigError,
    GitLabAuthError,
    GitLabError,
    GitLabForbiddenError,
    GitLabNotFoundError,
    LoreError,
)
from lore_daemon.gitlab.models import Project
from lore_daemon.store import ledger
from lore_daemon.store.locks import LockInfo
from lore_daemon.sync.context import RunCancelled, RunContext, robot_error
from lore_daemon.sync.docs_phase import run_docs_phase, run_standard_embed
from lore_daemon.sync.drain_phase import drain_dependents, release_claims
from lore_daemon.sync.ingest_phase import ingest_project
from lore_daemon.sync.locking import HeldLock, acquire_lock, run_heartbeat
from lore_daemon.sync.write_clock import WriteClock
from lore_daemon.timeutil import now_ms

log = logging.getLogger(__name__)

_CONFIG_CLASS_ERRORS = (GitLabAuthError, GitLabForbiddenError, GitLabNotFoundError)


def _project_paths(engine: Engine, params: protocol.SyncParams) -> list[str]:
    named = params.projects if params.projects is not None else engine.config.project_paths
    paths = list(dict.fromkeys(named))
    if not paths:
        raise ConfigError(
            "No project to sync: the configuration lists no [[projects]] and the request named none.",
            "CONFIG_INVALID",
            "Add a [[projects]] entry with path = \"group/project\" to the configuration file.",
            details={"key": "projects", "file": str(engine.config.config_path or "")},
        )
    return paths


async def _resolve(engine: Engine, paths: list[str]) -> tuple[list[Project], GitLabError | None]:
    """Resolve each project once (its numeric id is used from then on).

    Auth and not-found answers raise: the request cannot start a run. Transient failures are
    returned so the run can be recorded as failed with a retry action.
    """
    projects: list[Project] = []
    for path in paths:
        try:
            projects.append(await engine.gitlab.get_project(path))
        except _CONFIG_CLASS_ERRORS:
            raise
        except GitLabError as exc:
            return projects, exc
    return projects, None


def _mark_abandoned(conn: apsw.Connection, stale_ms: int) -> list[str]:
    return ledger.mark_abandoned(conn, stale_ms=stale_ms, now_ms=now_ms())


async def run_standard_sync(
    engine: Engine, params: protocol.SyncParams, progress: ProgressSink = discard_progress
) -> protocol.SyncResult:
    """Run one standard sync. Returns a ``SyncResult`` whatever the run's outcome, except:
    ``LoreError`` for problems that prevent the run from starting (config, auth, unknown project)
    and ``CancelledError`` after a cancelled run was recorded."""
    paths = _project_paths(engine, params)
    single = paths[0] if len(paths) == 1 else None
    ctx = RunContext(engine, mode="standard", progress=progress, project=single)
    ctx.observe_gitlab()
    try:
        projects, early_error = await _resolve(engine, paths)
        return await _run(ctx, params, paths, projects, early_error)
    finally:
        ctx.stop_observing_gitlab()


async def _run(
    ctx: RunContext,
    params: protocol.SyncParams,
    paths: list[str],
    projects: list[Project],
    early_error: GitLabError | None,
) -> protocol.SyncResult:
    engine = ctx.engine
    sync_cfg = engine.config.sync
    await ctx.write(_mark_abandoned, sync_cfg.stale_lock_ms)
    clock = WriteClock()
    held: HeldLock | None = None
    try:
        await ctx.ledger_start(protocol.RequestedTargets(projects=paths))
        assert ctx.run_id is not None
        ctx.emit("begin", f"standard sync of {', '.join(paths)}")
        if early_error is not None:
            raise early_error
        async with run_heartbeat(engine.db, ctx.run_id, stale_ms=sync_cfg.stale_lock_ms):
            held = await acquire_lock(
                engine.db, "sync", owner=engine.owner, run_id=ctx.run_id,
                timeout_ms=sync_cfg.lock_timeout_ms, stale_ms=sync_cfg.stale_lock_ms,
                on_wait=functools.partial(_on_lock_wait, ctx),
            )
        ctx.stage_timings_ms["lockWait"] = held.waited_ms
        with ctx.phase_span("ingest"):
            await ctx.ledger_update()
            for project in projects:
                await ingest_project(ctx, project, held, clock)
        with ctx.phase_span("dependents"):
            await ctx.ledger_update()
            await drain_dependents(ctx, held, clock, stale_claim_ms=sync_cfg.stale_lock_ms)
        with ctx.phase_span("docs"):
            await ctx.ledger_update()
            await run_docs_phase(ctx, held, clock, keep_ids=False)
        held.ensure_held()
        await held.release()
        with ctx.phase_span("embed"):
            clock.record(ctx)
            await ctx.ledger_update()
            await run_standard_embed(
                ctx, engine.embeddings, no_embed=params.no_embed, reembed=params.reembed
            )
        clock.record(ctx)
        ctx.failures.sort(key=lambda f: (f.kind != "issue", f.iid, f.stage))
        status: ledger.FinalStatus = "partial" if ctx.failures else "succeeded"
        await ctx.ledger_finish(status)
        ctx.emit("end", f"standard sync {status}", phase="done")
        return _result(ctx, params, paths, status)
    except (asyncio.CancelledError, RunCancelled):
        await _cleanup(ctx, held)
        clock.record(ctx)
        await ctx.ledger_finish("cancelled", failed_phase=ctx.phase)
        ctx.emit("end", "standard sync cancelled")
        raise asyncio.CancelledError from None
    except Exception as exc:
        if not isinstance(exc, LoreError):
            log.exception("standard sync %s failed unexpectedly", ctx.run_id)
        await _cleanup(ctx, held)
        clock.record(ctx)
        error = robot_error(exc)
        error.actions = recovery.standard_failed_actions(params, exc, engine.config.gitlab.token_env)
        failed_phase = ctx.phase
        await ctx.ledger_finish("failed", failed_phase=failed_phase, error=error)
        ctx.emit("end", f"standard sync failed: {error.code}")
        return _result(ctx, params, paths, "failed", error=error, failed_phase=failed_phase)


def _on_lock_wait(ctx: RunContext, holder: LockInfo, waited_ms: int) -> None:
    who = f"run {holder.run_id}" if holder.run_id else f"pid {holder.pid}"
    ctx.emit("report", f"waiting for the sync lock held by {who} ({waited_ms} ms)")


async def _cleanup(ctx: RunContext, held: HeldLock | None) -> None:
    """Release what the run holds; each step completes even if the task is cancelled again."""
    try:
        await asyncio.shield(ctx.engine.db.write(release_claims, ctx.engine.owner))
    except Exception:
        log.exception("releasing dependent-job claims of run %s failed", ctx.run_id)
    if held is not None:
        await held.release()


# ------------------------------------------------------------------------------------ results


def _result(
    ctx: RunContext,
    params: protocol.SyncParams,
    paths: list[str],
    status: ledger.FinalStatus,
    *,
    error: protocol.RobotError | None = None,
    failed_phase: protocol.RunPhase | None = None,
) -> protocol.SyncResult:
    actions: list[protocol.RecoveryAction] = []
    if error is not None:
        actions = list(error.actions)
    elif status == "partial":
        actions = recovery.standard_partial_actions(params, ctx.project, ctx.failures)
    ctx.counters.failures = len(ctx.failures)
    return protocol.SyncResult(
        run_id=ctx.run_id,
        mode="standard",
        status=status,
        phase="failed" if status == "failed" else "done",
        failed_phase=failed_phase,
        project=ctx.project,
        requested=protocol.RequestedTargets(projects=paths),
        entity_failures=list(ctx.failures),
        counters=msgspec.structs.replace(ctx.counters),
        stage_timings_ms=dict(ctx.stage_timings_ms),
        recovery_actions=actions,
        warnings=list(ctx.warnings),
        error=error,
    )
