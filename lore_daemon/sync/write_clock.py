"""Time spent in database writes, per stage: the run's local processing cost without network waits.

``stageTimingsMs`` gets two figures per stage: ``<stage>Write`` is the wall time the run awaited
the writer thread, ``<stage>WriteCpu`` the writer thread's CPU time for the same work. The second
excludes waiting for the GIL while the event loop parses HTTP responses, so it is the honest
"local processing" cost the benchmarks report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import apsw

from lore_daemon.sync.context import RunContext

T = TypeVar("T")


def _cpu_timed(conn: apsw.Connection, fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    started = time.thread_time()
    result = fn(conn, *args)
    return result, time.thread_time() - started


class WriteClock:
    """Accumulates wall and writer-CPU seconds per stage; ``record`` puts them in the run's timings."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    async def write(self, ctx: RunContext, stage: str, fn: Callable[..., T], *args: Any) -> T:
        """``ctx.write(fn, *args)`` (cancel-safe), timed under ``stage``."""
        started = time.monotonic()
        try:
            timed: tuple[T, float] = await ctx.write(_cpu_timed, fn, *args)
        finally:
            self.wall[stage] = self.wall.get(stage, 0.0) + (time.monotonic() - started)
        result, cpu = timed
        self.cpu[stage] = self.cpu.get(stage, 0.0) + cpu
        return result

    def record(self, ctx: RunContext) -> None:
        for stage, seconds in self.wall.items():
            ctx.stage_timings_ms[f"{stage}Write"] = int(seconds * 1000)
        for stage, seconds in self.cpu.items():
            ctx.stage_timings_ms[f"{stage}WriteCpu"] = int(seconds * 1000)
