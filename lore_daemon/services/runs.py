"""Shared body of the methods that start work against GitLab: engine, progress, run, end."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from lore_daemon import protocol
from lore_daemon.services.progress import ProgressReporter
from lore_daemon.services.runtime import Runtime

if TYPE_CHECKING:  # the engine pulls in httpx: keep it off the start-up path
    from lore_daemon.engine import Engine, ProgressSink

P = TypeVar("P", bound=protocol._Params)
R = TypeVar("R")

RunFn: TypeAlias = "Callable[[Engine, P, ProgressSink], Awaitable[R]]"


async def run_with_progress(
    runtime: Runtime,
    params: P,
    run: RunFn[P, R],
    *,
    title: str,
    phases: tuple[str, ...],
    outcome: Callable[[R], str],
) -> R:
    """Build (or reuse) the engine, open progress, await the run, always end the progress.

    Cancelling this task (``$/cancelRequest``, ``window/workDoneProgress/cancel``, shutdown) cancels
    the engine's await; the engine records ``cancelled`` and releases its locks before re-raising.
    """
    engine = await runtime.engine()
    reporter = await ProgressReporter.start(
        runtime.ls, params, title=title, phases=phases, task=asyncio.current_task()
    )
    end_message = "failed"
    try:
        result = await run(engine, params, reporter)
        end_message = outcome(result)
        return result
    except asyncio.CancelledError:
        end_message = "cancelled"
        raise
    finally:
        reporter.close(end_message)
