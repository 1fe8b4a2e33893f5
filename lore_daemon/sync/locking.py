"""Async lock handling for runs: wait for an ``app_locks`` lock, heartbeat it, always release it.

``store/locks.py`` is the synchronous compare-and-set; this module adds what a run needs around it
on the event loop: polling with backoff while another run holds the lock (reporting each wait), a
``LOCK_TIMEOUT`` error naming the holder, a background heartbeat of both the lock and the run's
ledger row, and release on every exit path — exceptions and cancellation included.

Cancellation is the subtle part. ``Database.write`` runs on the writer thread and is *not*
interrupted when the awaiting task is cancelled, so an acquire attempt in flight can still win the
lock after the caller was cancelled. Every write here is therefore awaited to completion, a lock
won by a cancelled attempt is released at once, and only then is ``CancelledError`` re-raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import apsw

from lore_daemon.errors import LockTimeoutError, RunError
from lore_daemon.store import ledger, locks
from lore_daemon.store.connection import Database
from lore_daemon.store.locks import AcquireResult, LockInfo
from lore_daemon.sync.liveness import holder_gone, process_identity
from lore_daemon.timeutil import now_ms

log = logging.getLogger(__name__)

T = TypeVar("T")

MIN_BACKOFF_MS = 25
MAX_BACKOFF_MS = 500
MIN_HEARTBEAT_MS = 50
MIN_RETRY_AFTER_MS = 500

WaitCallback = Callable[[LockInfo, int], None]


def make_owner() -> str:
    """This daemon process's lock owner id: ``host:pid:random``; create one per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def heartbeat_interval_ms(stale_ms: int) -> int:
    """Four heartbeats per stale period, so one slow beat never makes a live holder look dead."""
    return max(stale_ms // 4, MIN_HEARTBEAT_MS)


async def _complete(awaitable: Awaitable[T]) -> T:
    """Await to the end even if the caller is cancelled meanwhile; then re-raise the cancellation."""
    fut = asyncio.ensure_future(awaitable)
    interrupted = False
    while not fut.done():
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            interrupted = interrupted or not fut.done()
        except BaseException:
            pass  # fut is done; its outcome is read below
    if interrupted:
        if not fut.cancelled():
            fut.exception()  # mark it retrieved; the cancellation wins
        raise asyncio.CancelledError
    return fut.result()


class _Heartbeat:
    """A background task calling ``beat(conn)`` on the writer every interval until stopped.

    ``beat`` returns False once there is nothing left to keep alive (lock taken over, run closed):
    the task then records ``lost`` and ends. The task is kept in ``_tasks`` so it cannot be
    garbage-collected while running.
    """

    def __init__(self, db: Database, interval_ms: int, beat: Callable[[apsw.Connection], bool], label: str):
        self._db = db
        self._interval_s = interval_ms / 1000
        self._beat = beat
        self._label = label
        self._tasks: set[asyncio.Task[None]] = set()
        self.lost = False

    def start(self) -> None:
        task = asyncio.create_task(self._loop(), name=f"lore-heartbeat:{self._label}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                alive = await self._db.write(self._beat)
            except apsw.Error as exc:  # busy or I/O trouble: try again next interval
                log.warning("heartbeat of %s failed (%s); retrying", self._label, type(exc).__name__)
                continue
            except Exception:
                log.exception("heartbeat of %s stopped", self._label)
                return
            if not alive:
                self.lost = True
                log.warning("heartbeat of %s: no longer held/running; stopping", self._label)
                return

    async def stop(self) -> None:
        """Cancel the task and wait until it has really ended (no beat after this returns)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await _complete(asyncio.gather(*tasks, return_exceptions=True))


def _beat_lock_and_run(conn: apsw.Connection, name: str, owner: str, run_id: str | None) -> bool:
    """One transaction, so the lock and its run can never disagree about being alive."""
    with conn:
        now = now_ms()
        held = locks.heartbeat_lock(conn, name, owner=owner, now_ms=now)
        if held and run_id is not None:
            ledger.heartbeat_run(conn, run_id, now_ms=now)
    return held


def _try_acquire_now(
    conn: apsw.Connection, name: str, owner: str, run_id: str | None, pid: int, stale_ms: int
) -> AcquireResult:
    # The clock is read on the writer thread: the attempt may have queued behind other writes.
    return locks.try_acquire(
        conn, name, owner=owner, run_id=run_id, pid=pid, now_ms=now_ms(), stale_ms=stale_ms,
        process=process_identity(), holder_gone=holder_gone,
    )


def _release_now(conn: apsw.Connection, name: str, owner: str) -> bool:
    return locks.release_lock(conn, name, owner=owner)


class HeldLock:
    """A lock this process holds. Release it with ``await release()`` or ``async with``.

    While held, a background task heartbeats the lock and the run every
    ``heartbeat_interval_ms(stale_ms)``. ``waited_ms`` is how long acquiring took (the run records
    it as ``stageTimingsMs["lockWait"]``); ``took_over_from`` is the stale holder replaced, if any.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        *,
        owner: str,
        run_id: str | None,
        stale_ms: int,
        waited_ms: int,
        took_over_from: LockInfo | None,
    ) -> None:
        self._db = db
        self.name = name
        self.owner = owner
        self.run_id = run_id
        self.waited_ms = waited_ms
        self.took_over_from = took_over_from
        self._released = False
        self._heartbeat = _Heartbeat(
            db,
            heartbeat_interval_ms(stale_ms),
            lambda conn: _beat_lock_and_run(conn, name, owner, run_id),
            f"lock {name}",
        )

    @property
    def released(self) -> bool:
        return self._released

    @property
    def lost(self) -> bool:
        """True once a heartbeat found the row gone: another process took the lock over as stale."""
        return self._heartbeat.lost

    def ensure_held(self) -> None:
        """Raise ``ABANDONED`` if the lock was taken over; call before a write that needs it."""
        if self.lost:
            raise RunError(
                f"The {self.name} lock was taken over by another process; this run was declared abandoned.",
                "ABANDONED",
                "The run stalled for longer than sync.stale_lock_ms; retry it.",
                details={"lock": self.name, "runId": self.run_id},
            )

    async def release(self) -> None:
        """Stop heartbeating and delete the row. Idempotent; completes even under cancellation."""
        if self._released:
            return
        self._released = True
        try:
            await self._heartbeat.stop()
        finally:
            try:
                await _complete(self._db.write(_release_now, self.name, self.owner))
            except asyncio.CancelledError:
                raise
            except Exception:
                # The row will go stale and be taken over; nothing better can be done here.
                log.exception("releasing the %s lock failed", self.name)

    async def __aenter__(self) -> HeldLock:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()


async def _attempt(
    db: Database, name: str, owner: str, run_id: str | None, stale_ms: int
) -> AcquireResult | None:
    """One CAS attempt; None when SQLite's write lock stayed busy (holder unknown)."""
    fut = asyncio.ensure_future(db.write(_try_acquire_now, name, owner, run_id, os.getpid(), stale_ms))
    try:
        return await asyncio.shield(fut)
    except apsw.BusyError:
        return None
    except asyncio.CancelledError:
        try:
            await _complete(fut)
        except BaseException:
            pass  # the attempt is over either way; the cancellation is re-raised below
        won = not fut.cancelled() and fut.exception() is None and fut.result().acquired
        if won:
            try:
                await _complete(db.write(_release_now, name, owner))
            except asyncio.CancelledError:
                pass  # the release ran to completion before this was raised
            except Exception:  # stale takeover will clean up what could not be deleted
                log.exception("undoing the %s lock won by a cancelled attempt failed", name)
        raise


def lock_timeout_error(name: str, holder: LockInfo | None, waited_ms: int, stale_ms: int) -> LockTimeoutError:
    """LOCK_TIMEOUT naming the holder (run, pid, owner); never anything secret.

    ``retry_after_ms`` is when the lock would become free at the latest if the holder died right
    after its last heartbeat — a live holder may release sooner.
    """
    if holder is None:
        return LockTimeoutError(
            f"Could not get the database write lock to take the {name} lock within {waited_ms} ms.",
            "LOCK_TIMEOUT",
            "Another process keeps the database busy; retry shortly.",
            details={"lock": name, "waitedMs": waited_ms},
            retry_after_ms=MIN_RETRY_AFTER_MS,
        )
    age_ms = max(0, now_ms() - holder.heartbeat_at)
    who = f"run {holder.run_id}" if holder.run_id else "a process"
    suggestion = "Wait for it to finish, then retry; sync.lock_timeout_ms sets how long a run waits."
    if holder.run_id:
        suggestion = f"Wait for it to finish (`lore sync-runs --run-id {holder.run_id}`), then retry."
    return LockTimeoutError(
        f"The {name} lock is held by {who} (pid {holder.pid}, owner {holder.owner}); "
        f"gave up after waiting {waited_ms} ms.",
        "LOCK_TIMEOUT",
        suggestion,
        details={
            "lock": name,
            "holderRunId": holder.run_id,
            "holderPid": holder.pid,
            "holderOwner": holder.owner,
            "holderAcquiredAt": holder.acquired_at,
            "holderHeartbeatAgeMs": age_ms,
            "waitedMs": waited_ms,
        },
        retry_after_ms=max(stale_ms - age_ms, MIN_RETRY_AFTER_MS),
    )


async def acquire_lock(
    db: Database,
    name: str,
    *,
    owner: str,
    run_id: str | None,
    timeout_ms: int,
    stale_ms: int,
    on_wait: WaitCallback | None = None,
    max_backoff_ms: int = MAX_BACKOFF_MS,
) -> HeldLock:
    """Wait until ``name`` is ours (or was stale, or its holder's process is gone from this host,
    and was taken over), then heartbeat it in background.

    Polls with backoff (25 ms doubling to ``max_backoff_ms``, 500 by default; interactive runs
    poll faster), calling ``on_wait(holder, waited_ms)`` after each refused attempt. Raises
    ``LockTimeoutError`` (LOCK_TIMEOUT) after ``timeout_ms``. Cancellation propagates and leaves
    nothing held. Use as
    ``async with await acquire_lock(...) as held:``.
    """
    started = time.monotonic()
    backoff_ms = min(MIN_BACKOFF_MS, max_backoff_ms)
    holder: LockInfo | None = None
    while True:
        result = await _attempt(db, name, owner, run_id, stale_ms)
        waited_ms = int((time.monotonic() - started) * 1000)
        if result is not None and result.acquired:
            held = HeldLock(
                db, name, owner=owner, run_id=run_id, stale_ms=stale_ms,
                waited_ms=waited_ms, took_over_from=result.took_over_from,
            )
            held._heartbeat.start()
            if result.took_over_from is not None:
                why = "whose process is gone" if result.holder_gone else "stale"
                log.warning("took over the %s lock (%s) from %s", name, why, result.took_over_from.owner)
            return held
        if result is not None:
            holder = result.holder
        if waited_ms >= timeout_ms:
            raise lock_timeout_error(name, holder, waited_ms, stale_ms)
        if on_wait is not None and holder is not None:
            on_wait(holder, waited_ms)
        await asyncio.sleep(min(backoff_ms, timeout_ms - waited_ms) / 1000)
        backoff_ms = min(backoff_ms * 2, max_backoff_ms)


class RunHeartbeat:
    """Keeps a run's ledger row fresh while it holds no lock (preflight, between locks).

    ``abandoned`` turns True if the row stopped being ``running`` (another process declared the
    run abandoned). Use as ``async with run_heartbeat(db, run_id, stale_ms=...):``.
    """

    def __init__(self, db: Database, run_id: str, *, stale_ms: int) -> None:
        self.run_id = run_id
        self._heartbeat = _Heartbeat(
            db,
            heartbeat_interval_ms(stale_ms),
            lambda conn: ledger.heartbeat_run(conn, run_id, now_ms=now_ms()),
            f"run {run_id}",
        )

    @property
    def abandoned(self) -> bool:
        return self._heartbeat.lost

    def start(self) -> None:
        self._heartbeat.start()

    async def stop(self) -> None:
        await self._heartbeat.stop()

    async def __aenter__(self) -> RunHeartbeat:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def run_heartbeat(db: Database, run_id: str, *, stale_ms: int) -> RunHeartbeat:
    """A not-yet-started ``RunHeartbeat`` for ``run_id`` (start it with ``async with``)."""
    return RunHeartbeat(db, run_id, stale_ms=stale_ms)
