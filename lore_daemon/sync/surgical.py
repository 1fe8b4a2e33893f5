"""Surgical sync: refresh exactly the issues and MRs a caller names (docs/surgical-sync.md).

Entry points (called by the services with the daemon's ``Engine``):

* :func:`run_preflight` — ``lore/preflight``: auth + every target checked remotely, zero writes.
* :func:`run_surgical_sync` — ``lore/syncSurgical``: the dry run (local reads only) or the run.

A run, in order: targets resolved offline (every validation error before any network call) →
ledger row → **preflight** (project, then every primary concurrently; dependent fetches start as
soon as the primaries are queued) → on any primary failure: ``failed`` in ``preflight``, nothing
written → ``sync`` lock → **ingest** (one transaction, stale guard) → **dependents** (per target,
inline, never the queue) → **docs** (exactly the touched keys) → lock released → **embed** (exactly
the regenerated documents, under the ``embed`` lock) → ``succeeded`` or ``partial``.
The phases live in :mod:`lore_daemon.sync.surgical_run`; this module is the front door.
"""

from __future__ import annotations

import asyncio
import time

from lore_daemon import protocol
from lore_daemon.engine import Engine, ProgressSink, discard_progress
from lore_daemon.errors import LoreError
from lore_daemon.gitlab.targets import ResolvedTargets, resolve_targets
from lore_daemon.recovery import preflight_actions
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.preflight import (
    PrimaryFetch,
    dry_run_entities,
    fetch_primaries,
    fetch_reporter,
    preflight_entities,
    project_failures,
    resolve_project,
)
from lore_daemon.sync.surgical_run import SurgicalRun

__all__ = ["resolve", "run_preflight", "run_surgical_sync"]


def resolve(engine: Engine, params: protocol.TargetParams) -> ResolvedTargets:
    """Offline target validation; with exactly one configured project, it is the default."""
    projects = engine.config.project_paths
    default = projects[0] if len(projects) == 1 else None
    return resolve_targets(params, engine.config.gitlab.base_url, default)


async def run_preflight(
    engine: Engine, params: protocol.PreflightParams, progress: ProgressSink = discard_progress
) -> protocol.PreflightResult:
    """Validate auth and every target against GitLab. Writes nothing at all, not even a ledger row."""
    targets = resolve(engine, params)
    ctx = RunContext(engine, mode="surgical", progress=progress, project=targets.project)
    ctx.observe_gitlab()  # retry waits show up as progress reports of this preflight
    try:
        return await _preflight(engine, targets, ctx)
    finally:
        ctx.stop_observing_gitlab()


async def _preflight(
    engine: Engine, targets: ResolvedTargets, ctx: RunContext
) -> protocol.PreflightResult:
    client = engine.gitlab
    auth = protocol.AuthInfo(ok=False)
    fetched = PrimaryFetch()
    project_path = targets.project
    with ctx.phase_span("preflight", f"checking {len(targets.issues) + len(targets.mrs)} target(s)"):
        user, project = await asyncio.gather(
            client.get_user(), resolve_project(client, targets.project), return_exceptions=True
        )
        for outcome in (user, project):
            if isinstance(outcome, BaseException) and not isinstance(outcome, LoreError):
                raise outcome
        if not isinstance(user, BaseException):
            auth = protocol.AuthInfo(ok=True, username=user.username)
        if isinstance(project, LoreError):
            fetched.failures = project_failures(targets, project)
            fetched.note_error(project)
        elif not isinstance(project, BaseException):
            project_path = project.path_with_namespace
            fetched = await fetch_primaries(client, project.id, targets, fetch_reporter(ctx))
    return protocol.PreflightResult(
        ok=auth.ok and not fetched.failures,
        project=project_path,
        auth=auth,
        entities=preflight_entities(targets, fetched),
        failures=fetched.failures,
        stage_timings_ms=dict(ctx.stage_timings_ms),
        recovery_actions=preflight_actions(
            targets, fetched.failures, auth_ok=auth.ok,
            token_env=engine.config.gitlab.token_env, retry_after_ms=fetched.retry_after_ms,
        ),
    )


async def run_surgical_sync(
    engine: Engine, params: protocol.SyncSurgicalParams, progress: ProgressSink = discard_progress
) -> protocol.SyncResult:
    """The surgical pipeline; returns a ``SyncResult`` whatever the run's status.

    Target errors raise ``TargetError`` before anything else happens. Cancellation records the run
    as ``cancelled`` (transaction rolled back, locks released) and re-raises ``CancelledError``.
    """
    targets = resolve(engine, params)
    if params.dry_run:
        return await _dry_run(engine, params, targets, progress)
    return await SurgicalRun(engine, params, targets, progress).execute()


async def _dry_run(
    engine: Engine, params: protocol.SyncSurgicalParams, targets: ResolvedTargets, progress: ProgressSink
) -> protocol.SyncResult:
    """What a run would sync and the local state of each target: no network, no writes, no row."""
    ctx = RunContext(engine, mode="surgical", progress=progress, project=targets.project)
    t0 = time.monotonic()
    ctx.phase = "preflight"
    ctx.emit("begin", "dry run: reading the local state of each target")
    entities = await engine.db.read(dry_run_entities, targets)
    ctx.stage_timings_ms["dryRun"] = int((time.monotonic() - t0) * 1000)
    ctx.emit("end", "dry run")
    return protocol.SyncResult(
        run_id=None,
        mode="surgical",
        status="succeeded",
        phase="done",
        dry_run=True,
        project=targets.project,
        requested=protocol.RequestedTargets(
            issues=list(targets.issues), mrs=list(targets.mrs), issue_urls=list(params.issue_urls),
            mr_urls=list(params.mr_urls), refs=list(params.refs), projects=[targets.project],
        ),
        entities=entities,
        counters=ctx.counters,
        stage_timings_ms=dict(ctx.stage_timings_ms),
    )
