"""Time spent in database writes, per stage: the run's local processing cost without network waits.

``stageTimingsMs`` gets two figures per stage: ``<stage>Write`` is the wall time the run awaited
the writer thread, ``<stage>WriteCpu`` the writer thread's CPU time for the same work. The second
excludes waiting for the GIL while the event loop parses HTTP responses, so it is the honest
"local processing" cost the benchmarks report. With a ``WriteLease`` every write runs under the
``sync`` lock, one write group at a time; waiting for that lock is ``lockWait``, not ``Write``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import apsw

from lore_daemon.sync.context import RunContext
from lore_daemon.sync.write_lease import WriteLease

T = TypeVar("T")


def _cpu_timed(conn: apsw.Connection, fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    started = time.thread_time()
    result = fn(conn, *args)
    return result, time.thread_time() - started


class WriteClock:
    """Accumulates wall and writer-CPU seconds per stage; ``record`` puts them in the run's timings."""

    def __init__(self, lease: WriteLease | None = None) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.lease = lease
        self.lock_waited_ms = 0  # waits for other locks the run took (recorded with the lease's)

    async def write(self, ctx: RunContext, stage: str, fn: Callable[..., T], *args: Any) -> T:
        """``ctx.write(fn, *args)`` (cancel-safe), under the lease when there is one, timed under
        ``stage``."""
        started = time.monotonic()
        waited_before = self.lease.waited_ms if self.lease is not None else 0
        try:
            timed: tuple[T, float]
            if self.lease is not None:
                timed = await self.lease.write(_cpu_timed, fn, *args)
            else:
                timed = await ctx.write(_cpu_timed, fn, *args)
        finally:
            waited_s = ((self.lease.waited_ms if self.lease is not None else 0) - waited_before) / 1000
            self.wall[stage] = self.wall.get(stage, 0.0) + (time.monotonic() - started) - waited_s
        result, cpu = timed
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu
        return result

    def record(self, ctx: RunContext) -> None:
        if self.lease is not None:
            ctx.stage_timings_ms["lockWait"] = self.lock_waited_ms + self.lease.waited_ms
            ctx.stage_timings_ms["syncLockHeldMax"] = self.lease.longest_hold_ms
        for stage, seconds in self.wall.items():
            ctx.stage_timings_ms[f"{stage}Write"] = int(seconds * 1000)
        for stage, seconds in self.cpu.items():
            ctx.stage_timings_ms[f"{stage}WriteCpu"] = int(seconds * 1000)
