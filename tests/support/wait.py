"""Polling until a condition holds: the one helper, blocking or awaitable.

Tests wait for an observable state (a row, a pid, a phase) rather than for a fixed time; the
timeout only bounds a failure, it never decides a pass.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


def wait_until(
    predicate: Callable[[], bool], *, timeout: float = 20.0, interval: float = 0.02, what: str = "condition"
) -> None:
    """Block until ``predicate()`` is true; ``AssertionError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 20.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """``wait_until`` for coroutines: the event loop keeps running between polls; ``predicate``
    may itself be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
