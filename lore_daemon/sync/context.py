"""Per-run state shared by the standard and surgical pipelines.

A ``RunContext`` is the one place a run's progress notifications, counters, stage timings,
failures and ledger writes go through, so both pipelines report the same way. It also makes
database work cancel-safe: when the awaiting task is cancelled, the thread doing the write is told
to stop at its next safe point (``cancel_event``) and is *waited for*, so the transaction has rolled
back before any lock is released.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import apsw
import msgspec

from lore_daemon import protocol
from lore_daemon.errors import RunError
from lore_daemon.gitlab import request_lane
from lore_daemon.gitlab._retry import RetryWait
from lore_daemon.gitlab.client import request_observer, wait_observer
from lore_daemon.store import ledger
from lore_daemon.timeutil import now_ms
from lore_daemon.tuning import Tuning

if TYPE_CHECKING:
    from lore_daemon.engine import Engine, ProgressSink

T = TypeVar("T")


class RunCancelled(RunError):
    """Raised inside database work when the run was cancelled; rolls the open transaction back."""


def new_run_id() -> str:
    return uuid.uuid4().hex


class RunContext:
    def __init__(
        self,
        engine: Engine,
        *,
        mode: protocol.RunMode,
        progress: ProgressSink,
        project: str | None = None,
        run_id: str | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.engine = engine
        self.tuning = tuning or engine.tuning  # batch sizes: the engine's, unless a test passes its own
        self.mode: protocol.RunMode = mode
        self.run_id = run_id
        self.project = project
        self.progress = progress
        self.counters = protocol.Counters()
        self.stage_timings_ms: dict[str, int] = {}
        self.failures: list[protocol.EntityFailure] = []
        self.warnings: list[str] = []
        self.phase: protocol.RunPhase = "preflight" if mode == "surgical" else "ingest"
        self.cancel_event = threading.Event()
        self._t0 = time.monotonic()
        self._last_throttled_report = float("-inf")
        self.started_at_ms = now_ms()
        self._observer_tokens: list[contextvars.Token[Any]] = []

    # ----------------------------------------------------------------------------- progress

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def emit(
        self,
        event: protocol.ProgressEvent,
        message: str = "",
        *,
        phase: protocol.RunPhase | None = None,
        entity: protocol.ProgressEntity | None = None,
    ) -> None:
        note = protocol.ProgressNotification(
            run_id=self.run_id,
            phase=phase or self.phase,
            event=event,
            message=message,
            elapsed_ms=self.elapsed_ms(),
            counters=msgspec.structs.replace(self.counters),
            entity=entity,
        )
        self.progress(note)

    def report_throttled(self, message: str, *, min_interval_ms: int = 250) -> None:
        """A ``report`` for bulk work (pages, job batches): at most one per ``min_interval_ms``,
        so a 50,000-issue sync does not flood the client with notifications."""
        now = time.monotonic()
        if now - self._last_throttled_report < min_interval_ms / 1000:
            return
        self._last_throttled_report = now
        self.emit("report", message)

    @contextmanager
    def phase_span(self, phase: protocol.RunPhase, message: str = "") -> Iterator[None]:
        """Emit ``begin``/``end`` for a phase and add its wall time to ``stage_timings_ms``."""
        self.phase = phase
        self.emit("begin", message or phase)
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.add_timing(phase, t0)
            self.emit("end", phase)

    def add_timing(self, stage: str, since_monotonic: float) -> None:
        ms = int((time.monotonic() - since_monotonic) * 1000)
        self.stage_timings_ms[stage] = self.stage_timings_ms.get(stage, 0) + ms

    # ------------------------------------------------------------------- GitLab observation

    def observe_gitlab(self) -> None:
        """Count this task's (and its children's) GitLab requests and report every retry wait;
        a standard sync's requests go in the background lane (interactive runs go first)."""
        self._observer_tokens.append(request_observer.set(self._on_request))
        self._observer_tokens.append(wait_observer.set(self._on_wait))
        if self.mode == "standard":
            self._observer_tokens.append(request_lane.set("background"))

    def stop_observing_gitlab(self) -> None:
        """Undo ``observe_gitlab`` (in the same task), so later requests are not counted here."""
        while self._observer_tokens:
            token = self._observer_tokens.pop()
            token.var.reset(token)

    def _on_request(self, _sent: object) -> None:
        self.counters.requests += 1

    def _on_wait(self, wait: RetryWait) -> None:
        self.counters.retries += 1
        self.counters.wait_ms += wait.wait_ms
        if wait.reason == "rate_limit":
            self.counters.rate_limit_waits += 1
        status = f" {wait.status}" if wait.status else ""
        self.emit(
            "report",
            f"GitLab {wait.reason}{status} on {wait.path}: retry {wait.attempt} in {wait.wait_ms} ms",
        )

    # ------------------------------------------------------------------------ cancellation

    def check_cancelled(self) -> None:
        """Call between items inside database work: raises to roll the transaction back."""
        if self.cancel_event.is_set():
            raise RunCancelled("The run was cancelled.", "CANCELLED", "Retry the run when ready.")

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the writer thread; on cancellation wait for it to stop."""
        fut = asyncio.ensure_future(self.engine.db.write(fn, *args))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self.cancel_event.set()
            try:
                await fut
            except BaseException:  # the run is being cancelled; its error is moot
                pass
            raise

    # ------------------------------------------------------------------------------- ledger

    async def ledger_start(self, requested: protocol.RequestedTargets) -> None:
        self.run_id = self.run_id or new_run_id()
        await self.write(
            functools.partial(
                ledger.start_run,
                run_id=self.run_id,
                mode=self.mode,
                phase=self.phase,
                project=self.project,
                requested=requested,
                owner=self.engine.owner,
                pid=os.getpid(),
                now_ms=now_ms(),
            )
        )

    async def ledger_update(self, **extra: Any) -> None:
        if self.run_id is None:
            return
        await self.write(
            _update_run,
            self.run_id,
            self.phase,
            msgspec.structs.replace(self.counters),
            dict(self.stage_timings_ms),
            list(self.failures),
            extra,
        )

    async def ledger_finish(
        self,
        status: ledger.FinalStatus,
        *,
        failed_phase: protocol.RunPhase | None = None,
        error: protocol.RobotError | None = None,
        surgical_summary: dict[str, Any] | None = None,
    ) -> None:
        """Write the terminal row. Safe to call while the task is being cancelled."""
        if self.run_id is None:
            return
        self.counters.failures = len(self.failures)
        await asyncio.shield(
            self.engine.db.write(
                _finish_run,
                self.run_id,
                status,
                failed_phase,
                msgspec.structs.replace(self.counters),
                dict(self.stage_timings_ms),
                list(self.failures),
                error,
                surgical_summary,
            )
        )


def _update_run(
    conn: apsw.Connection,
    run_id: str,
    phase: protocol.RunPhase,
    counters: protocol.Counters,
    timings: dict[str, int],
    failures: list[protocol.EntityFailure],
    extra: dict[str, Any],
) -> None:
    ledger.update_run(
        conn,
        run_id,
        now_ms=now_ms(),
        phase=phase,
        counters=counters,
        stage_timings_ms=timings,
        failures=failures,
        **extra,
    )


def _finish_run(
    conn: apsw.Connection,
    run_id: str,
    status: ledger.FinalStatus,
    failed_phase: protocol.RunPhase | None,
    counters: protocol.Counters,
    timings: dict[str, int],
    failures: list[protocol.EntityFailure],
    error: protocol.RobotError | None,
    surgical_summary: dict[str, Any] | None,
) -> None:
    ledger.finish_run(
        conn,
        run_id,
        status=status,
        now_ms=now_ms(),
        failed_phase=failed_phase,
        counters=counters,
        stage_timings_ms=timings,
        failures=failures,
        error=error,
        surgical_summary=surgical_summary,
    )


def robot_error(exc: BaseException) -> protocol.RobotError:
    """The RobotError of any exception: LoreErrors keep their code; anything else is INTERNAL."""
    from lore_daemon.errors import LoreError

    if isinstance(exc, LoreError):
        return protocol.RobotError(
            code=exc.code,
            message=exc.message,
            suggestion=exc.suggestion,
            retryable=exc.retryable,
            details=dict(exc.details),
        )
    return protocol.RobotError(
        code="INTERNAL",
        message="An unexpected internal error occurred; see the daemon log.",
        suggestion="Report the problem with the daemon log attached.",
        retryable=False,
    )
