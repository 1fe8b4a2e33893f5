"""One surgical run, phase by phase (docs/surgical-sync.md). Built and driven by
``surgical.run_surgical_sync``.

State that outlives a phase lives on the :class:`SurgicalRun`: per-target results, the dependent
fetch tasks started during preflight, the held ``sync`` lock. Every exit path — success, failure,
exception, cancellation — goes through ``execute``'s handlers, which cancel the fetch tasks,
release the lock and write the terminal ledger row.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING, Any

import apsw

from lore_daemon import protocol
from lore_daemon.errors import LoreError, RunError
from lore_daemon.gitlab.models import Project
from lore_daemon.gitlab.targets import ResolvedTargets
from lore_daemon.recovery import error_actions, partial_actions, preflight_failed_actions
from lore_daemon.store import ledger
from lore_daemon.store.keys import SourceKey
from lore_daemon.store.locks import LockInfo
from lore_daemon.sync.context import RunContext, robot_error
from lore_daemon.sync.dependents import STAGES_FOR, FetchedDependents, fetch_dependents
from lore_daemon.sync.embed import run_embed_phase
from lore_daemon.sync.locking import HeldLock, acquire_lock, run_heartbeat
from lore_daemon.sync.preflight import (
    PrimaryFetch,
    Target,
    fetch_primaries,
    fetch_reporter,
    project_failures,
    resolve_project,
)
from lore_daemon.sync.surgical_ingest import (
    clear_dirty_rows,
    ingest_primaries,
    provable_watermark,
    regenerate_target_documents,
    write_target_dependents,
)
from lore_daemon.sync.surgical_state import EntityState, EntityTable
from lore_daemon.timeutil import now_ms

if TYPE_CHECKING:
    from lore_daemon.engine import Engine, ProgressSink

log = logging.getLogger(__name__)


def _label(target: Target) -> str:
    return f"{'#' if target[0] == 'issue' else '!'}{target[1]}"


def _close_abandoned(conn: apsw.Connection, stale_ms: int) -> list[str]:
    return ledger.mark_abandoned(conn, stale_ms=stale_ms, now_ms=now_ms())


class _PreflightFailed(Exception):
    """Internal: preflight found failures; nothing may be written."""


class SurgicalRun:
    def __init__(
        self, engine: Engine, params: protocol.SyncSurgicalParams, targets: ResolvedTargets,
        progress: ProgressSink,
    ) -> None:
        self.engine = engine
        self.params = params
        self.targets = targets
        self.ctx = RunContext(engine, mode="surgical", progress=progress, project=targets.project)
        self.table = EntityTable(targets)
        self.dep_tasks: dict[Target, asyncio.Task[FetchedDependents]] = {}
        self.lock: HeldLock | None = None
        self.retry_after_ms: int | None = None
        self.preflight_started_ms = 0
        self.regenerated_ids: list[int] = []
        self.unchanged_ids: list[int] = []
        self.embed_ids: list[int] = []

    # ------------------------------------------------------------------------------- driver

    async def execute(self) -> protocol.SyncResult:
        self.ctx.observe_gitlab()
        try:
            return await self._execute()
        finally:
            self.ctx.stop_observing_gitlab()

    async def _execute(self) -> protocol.SyncResult:
        ctx, sync = self.ctx, self.engine.config.sync
        await ctx.write(_close_abandoned, sync.stale_lock_ms)  # runs of dead processes → ABANDONED
        await ctx.ledger_start(self.table.requested(self.params))
        assert ctx.run_id is not None
        try:
            async with run_heartbeat(self.engine.db, ctx.run_id, stale_ms=sync.stale_lock_ms):
                try:
                    return await self._pipeline()
                finally:
                    await self._release_resources()
        except asyncio.CancelledError:
            await ctx.ledger_finish("cancelled", failed_phase=ctx.phase, surgical_summary=self._summary())
            raise

    async def _pipeline(self) -> protocol.SyncResult:
        try:
            project, fetched = await self._preflight()
            await self._ingest(project, fetched)
            await self._dependents()
            await self._docs()
            await self._release_resources()
            await self._embed()
        except _PreflightFailed:
            return await self._finish_failed(
                _preflight_error(len(self.ctx.failures)),
                preflight_failed_actions(
                    self.targets, self.ctx.failures, token_env=self.engine.config.gitlab.token_env,
                    retry_after_ms=self.retry_after_ms, no_embed=self.params.no_embed,
                ),
            )
        except Exception as exc:
            if not isinstance(exc, LoreError):
                log.exception("surgical run %s failed unexpectedly", self.ctx.run_id)
            retry_after = exc.retry_after_ms if isinstance(exc, LoreError) else None
            error = robot_error(exc)
            return await self._finish_failed(
                error,
                error_actions(
                    self.targets, error, token_env=self.engine.config.gitlab.token_env,
                    retry_after_ms=retry_after or self.retry_after_ms, no_embed=self.params.no_embed,
                ),
            )
        status: ledger.FinalStatus = "partial" if self.ctx.failures else "succeeded"
        actions = (
            partial_actions(self.targets, self.ctx.failures, retry_after_ms=self.retry_after_ms)
            if self.ctx.failures else []
        )
        await self.ctx.ledger_finish(status, surgical_summary=self._summary())
        return self._result(status, "done", None, None, actions)

    async def _release_resources(self) -> None:
        """Stop every dependent fetch still running and release the sync lock (idempotent)."""
        tasks = [task for task in self.dep_tasks.values() if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.lock is not None:
            lock, self.lock = self.lock, None
            await lock.release()

    # ------------------------------------------------------------------------------ phases

    async def _preflight(self) -> tuple[Project, PrimaryFetch]:
        ctx, client = self.ctx, self.engine.gitlab
        self.preflight_started_ms = now_ms()  # the stale guard (docs/surgical-sync.md, invariant 6)
        with ctx.phase_span("preflight", f"fetching {self.targets.count} target(s)"):
            try:
                project = await resolve_project(client, self.targets.project)
            except LoreError as exc:
                ctx.failures.extend(project_failures(self.targets, exc))
                raise
            fetched = await fetch_primaries(
                client, project.id, self.targets, fetch_reporter(ctx),
                on_started=functools.partial(self._start_dependents, project.id),
            )
        ctx.counters.issues_fetched = len(fetched.issues)
        ctx.counters.mrs_fetched = len(fetched.mrs)
        self._note_retry_after(fetched.retry_after_ms)
        self.table.record_fetched(fetched)  # found targets keep title/url/updatedAt even if the run fails
        if fetched.failures:
            ctx.failures.extend(fetched.failures)
            raise _PreflightFailed
        return project, fetched

    def _start_dependents(self, project_id: int) -> None:
        """Dependent fetches need only the project id and IID: start them behind the primaries."""
        client = self.engine.gitlab
        for kind, iid in self.table.targets:
            coro = fetch_dependents(client, project_id, kind, iid, STAGES_FOR[kind])
            self.dep_tasks[(kind, iid)] = asyncio.create_task(coro, name=f"lore-dependents:{kind}:{iid}")

    async def _ingest(self, project: Project, fetched: PrimaryFetch) -> None:
        ctx, engine = self.ctx, self.engine
        waited = 0
        await self._enter("ingest")
        with ctx.phase_span("ingest", "waiting for the sync lock"):
            self.lock = await acquire_lock(
                engine.db, "sync", owner=engine.owner, run_id=ctx.run_id,
                timeout_ms=engine.config.sync.lock_timeout_ms, stale_ms=engine.config.sync.stale_lock_ms,
                on_wait=self._on_lock_wait,
            )
            waited = self.lock.waited_ms
            ctx.stage_timings_ms["lockWait"] = waited
            self.lock.ensure_held()
            outcomes = await ctx.write(
                functools.partial(
                    ingest_primaries,
                    project=project,
                    issues=[fetched.issues[iid] for iid in self.targets.issues],
                    mrs=[fetched.mrs[iid] for iid in self.targets.mrs],
                    now_ms=now_ms(),
                    stale_guard_ms=self.preflight_started_ms,
                    check_cancelled=ctx.check_cancelled,
                )
            )
            for outcome in outcomes:
                entity = self.table.record_ingest(outcome, ctx.counters)
                if entity.outcome == "skippedStale":
                    task = self.dep_tasks.pop(entity.target, None)
                    if task is not None:
                        task.cancel()
                self._report(entity, "ingest")
        ctx.stage_timings_ms["ingest"] = max(0, ctx.stage_timings_ms.get("ingest", 0) - waited)

    def _on_lock_wait(self, holder: LockInfo, waited_ms: int) -> None:
        held_by = f"run {holder.run_id}" if holder.run_id else "another process"
        self.ctx.emit(
            "report", f"waiting for the sync lock held by {held_by} (pid {holder.pid}): {waited_ms} ms"
        )

    async def _dependents(self) -> None:
        ctx = self.ctx
        await self._enter("dependents")
        with ctx.phase_span("dependents"):
            pending = {
                task: target for target, task in self.dep_tasks.items() if self.table.wants_dependents(target)
            }
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: self.table.order(pending[t])):
                    entity = self.table.get(pending.pop(task))
                    await self._write_dependents(entity, task.result())

    async def _write_dependents(self, entity: EntityState, fetched: FetchedDependents) -> None:
        ctx = self.ctx
        assert self.lock is not None and entity.gitlab_id is not None
        self.lock.ensure_held()
        written = await ctx.write(
            functools.partial(
                write_target_dependents, fetched=fetched, parent_id=entity.gitlab_id,
                parent_updated_at_ms=provable_watermark(entity.outcome, entity.updated_at_ms),
                now_ms=now_ms(), check_cancelled=ctx.check_cancelled,
            )
        )
        failures = fetched.failures()
        for error in fetched.errors.values():
            self._note_retry_after(error.retry_after_ms)
        entity.dependents = dict(written.outcomes)
        entity.touched |= written.touched
        written.counts.add_to(ctx.counters)
        ctx.counters.dependent_jobs_done += sum(1 for o in written.outcomes.values() if o != "failed")
        ctx.counters.dependent_jobs_failed += len(failures)
        ctx.failures.extend(failures)
        self._report(entity, "dependents", "partial" if failures else "synced")

    async def _docs(self) -> None:
        ctx = self.ctx
        await self._enter("docs")
        with ctx.phase_span("docs"):
            keys_by_target = self.table.keys_by_target()
            if not keys_by_target:
                return
            assert self.lock is not None
            self.lock.ensure_held()
            generated_at = now_ms()
            docs = await ctx.write(
                functools.partial(
                    regenerate_target_documents, keys_by_target=keys_by_target, now_ms=generated_at,
                    check_cancelled=ctx.check_cancelled, write_chunk=ctx.tuning.write_chunk,
                )
            )
            done_keys: list[SourceKey] = []
            for target, target_docs in docs.items():
                entity = self.table.get(target)
                if target_docs.error is not None:
                    ctx.failures.append(entity.failure("docs", target_docs.error))
                    self._report(entity, "docs", "failed")
                    continue
                done_keys.extend(keys_by_target[target])
                entity.document_ids = target_docs.regenerated_ids + target_docs.unchanged_ids
                self.regenerated_ids.extend(target_docs.regenerated_ids)
                self.unchanged_ids.extend(target_docs.unchanged_ids)
                self._report(entity, "docs", f"{len(entity.document_ids)} document(s)")
            ctx.counters.documents_regenerated += len(self.regenerated_ids)
            ctx.counters.documents_unchanged += len(self.unchanged_ids)
            ctx.emit(
                "report", f"{len(self.regenerated_ids)} document(s) regenerated; clearing their dirty rows"
            )
            self.lock.ensure_held()
            await ctx.write(functools.partial(clear_dirty_rows, keys=done_keys, generated_at_ms=generated_at))

    async def _embed(self) -> None:
        ctx = self.ctx
        await self._enter("embed")
        with ctx.phase_span("embed"):
            outcome = await run_embed_phase(
                ctx, self.regenerated_ids, service=self.engine.embeddings, no_embed=self.params.no_embed,
            )
            self.embed_ids = outcome.document_ids
            if outcome.warning:
                ctx.warnings.append(outcome.warning)

    async def _enter(self, phase: protocol.RunPhase) -> None:
        """Record the phase in the ledger BEFORE announcing it, so a reader never sees it lag."""
        self.ctx.phase = phase
        await self.ctx.ledger_update()

    # ----------------------------------------------------------------------------- results

    def _note_retry_after(self, value: int | None) -> None:
        if value is not None:
            self.retry_after_ms = max(self.retry_after_ms or 0, value)

    def _report(self, entity: EntityState, stage: str, outcome: str | None = None) -> None:
        self.ctx.emit(
            "report", f"{_label(entity.target)} {stage}: {outcome or entity.outcome}",
            entity=protocol.ProgressEntity(
                kind=entity.kind, iid=entity.iid, outcome=outcome or entity.outcome, stage=stage
            ),
        )

    def _summary(self) -> dict[str, Any]:
        return {
            "entities": self.table.summary(),
            "documentIds": list(self.regenerated_ids),
            "unchangedDocumentIds": list(self.unchanged_ids),
            "embedDocumentIds": list(self.embed_ids),
            "preflightStartedAt": self.preflight_started_ms,
            "noEmbed": self.params.no_embed,
        }

    async def _finish_failed(
        self, error: protocol.RobotError, actions: list[protocol.RecoveryAction]
    ) -> protocol.SyncResult:
        failed_phase = self.ctx.phase
        error.actions = list(actions)
        await self._release_resources()
        await self.ctx.ledger_finish(
            "failed", failed_phase=failed_phase, error=error, surgical_summary=self._summary()
        )
        return self._result("failed", "failed", failed_phase, error, actions)

    def _result(
        self, status: ledger.FinalStatus, phase: protocol.RunPhase, failed_phase: protocol.RunPhase | None,
        error: protocol.RobotError | None, actions: list[protocol.RecoveryAction],
    ) -> protocol.SyncResult:
        ctx = self.ctx
        return protocol.SyncResult(
            run_id=ctx.run_id,
            mode="surgical",
            status=status,
            phase=phase,
            failed_phase=failed_phase,
            project=self.targets.project,
            requested=self.table.requested(self.params),
            entities=self.table.results(),
            entity_failures=list(ctx.failures),
            counters=ctx.counters,
            stage_timings_ms=dict(ctx.stage_timings_ms),
            recovery_actions=actions,
            warnings=list(ctx.warnings),
            error=error,
        )


def _preflight_error(count: int) -> protocol.RobotError:
    return robot_error(
        RunError(
            f"{count} target(s) could not be fetched; nothing was written.",
            "PREFLIGHT_FAILED",
            "See entityFailures; fix or leave out those targets and retry.",
        )
    )

