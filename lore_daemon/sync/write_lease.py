"""The ``sync`` lock, one write group at a time: how a standard sync lets interactive runs go first.

A standard run holds the ``standard`` lock for the whole run (one standard sync at a time per
database) but the ``sync`` lock only while one of its write groups runs (SPEC §8.5): each writer
hop — an ingest page, a hop of dependent jobs, a documents batch — takes ``sync`` by
compare-and-set, runs its transactions and releases it, all in that one hop of the writer thread.
Between hops (while it fetches pages, waits out a rate limit, or gathers the next hop) it holds
nothing a surgical run needs, so a surgical run waits for at most one write group:

* in the same process, its acquire attempt queues on the writer thread behind the current hop and
  wins right after it;
* in another process, it polls (``acquire_lock``'s backoff) and gets in between two hops.

When a surgical run holds ``sync``, the standard sync's next hop is refused and waits — polling
with a short backoff, each refusal reported in progress — up to ``sync.lock_timeout_ms``
(``LOCK_TIMEOUT`` naming the holder, as for any lock wait). The wait counts in ``lockWait``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import apsw

from lore_daemon.store import locks
from lore_daemon.store.locks import LockInfo
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.liveness import holder_gone, process_identity
from lore_daemon.sync.locking import WaitCallback, lock_timeout_error
from lore_daemon.timeutil import now_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

LEASE_MIN_BACKOFF_MS = 10
LEASE_MAX_BACKOFF_MS = 100  # a surgical run holds the lock for tens of ms: poll about that often


@dataclass(frozen=True, slots=True)
class _Refused:
    holder: LockInfo | None


@dataclass(frozen=True, slots=True)
class _Done(Generic[T]):
    value: T
    took_over_from: LockInfo | None
    held_s: float  # how long the lock was held for this group


def _leased(
    conn: apsw.Connection, name: str, owner: str, run_id: str | None, stale_ms: int,
    fn: Callable[..., T], args: tuple[Any, ...],
) -> _Refused | _Done[T]:
    """On the writer thread: take the lock, run ``fn(conn, *args)``, release the lock."""
    try:
        got = locks.try_acquire(
            conn, name, owner=owner, run_id=run_id, pid=os.getpid(), now_ms=now_ms(), stale_ms=stale_ms,
            process=process_identity(), holder_gone=holder_gone,
        )
    except apsw.BusyError:  # another process kept SQLite's write lock: try again like a refusal
        return _Refused(None)
    if not got.acquired:
        return _Refused(got.holder)
    started = time.perf_counter()
    try:
        value = fn(conn, *args)
    finally:
        try:
            locks.release_lock(conn, name, owner=owner)
        except apsw.Error:  # the row stays until it is stale or its process is gone; nothing else to do
            log.exception("releasing the %s lock after a write group failed", name)
    return _Done(value, got.took_over_from, time.perf_counter() - started)


class WriteLease:
    """Runs a run's write hops each under the ``sync`` lock (see the module docstring)."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        timeout_ms: int,
        stale_ms: int,
        on_wait: WaitCallback | None = None,
        name: str = "sync",
    ) -> None:
        self._ctx = ctx
        self.name = name
        self._timeout_ms = timeout_ms
        self._stale_ms = stale_ms
        self._on_wait = on_wait
        self.waited_ms = 0  # every refused hop's wait, summed (the run's lockWait includes it)
        self.hops = 0
        self.longest_hold_ms = 0  # the longest a write group held the lock (what a surgical run may wait)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``ctx.write(fn, *args)`` holding the lock; waits (and reports) while a run holds it."""
        ctx = self._ctx
        started = attempt = time.monotonic()
        backoff_ms = LEASE_MIN_BACKOFF_MS
        holder: LockInfo | None = None
        try:
            while True:
                attempt = time.monotonic()
                outcome: _Refused | _Done[T] = await ctx.write(
                    _leased, self.name, ctx.engine.owner, ctx.run_id, self._stale_ms, fn, args
                )
                if isinstance(outcome, _Done):
                    self.hops += 1
                    self.longest_hold_ms = max(self.longest_hold_ms, round(outcome.held_s * 1000))
                    if outcome.took_over_from is not None:
                        log.warning("took over the %s lock from %s", self.name, outcome.took_over_from.owner)
                    return outcome.value
                holder = outcome.holder or holder
                waited = int((time.monotonic() - started) * 1000)
                if waited >= self._timeout_ms:
                    raise lock_timeout_error(self.name, holder, waited, self._stale_ms)
                if self._on_wait is not None and holder is not None:
                    self._on_wait(holder, waited)
                ctx.check_cancelled()
                await asyncio.sleep(min(backoff_ms, self._timeout_ms - waited) / 1000)
                backoff_ms = min(backoff_ms * 2, LEASE_MAX_BACKOFF_MS)
        finally:
            # Time before the attempt that got the lock (or before giving up): the hop's own
            # write is not lock wait.
            self.waited_ms += int((attempt - started) * 1000)
