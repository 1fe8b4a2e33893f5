"""app_locks in one process: the CAS, stale takeover, heartbeats, and the async acquire/release."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import apsw
import pytest

from lore_daemon.errors import LockTimeoutError, RunError, StoreError
from lore_daemon.protocol import RequestedTargets
from lore_daemon.store import ledger, locks
from lore_daemon.store.connection import Database
from lore_daemon.sync.locking import HeldLock, acquire_lock, make_owner, run_heartbeat
from lore_daemon.timeutil import now_ms
from tests.support.wait import wait_until_async

T0 = 1_700_000_000_000
STALE = 1_000


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "lore.db")
    database.open()
    yield database
    database.close()


def _start_run(conn: apsw.Connection, run_id: str, now: int, phase: str = "ingest") -> None:
    ledger.start_run(conn, run_id=run_id, mode="surgical", phase=phase,  # type: ignore[arg-type]
                     project="g/p", requested=RequestedTargets(issues=[1]), owner="o", pid=1, now_ms=now)


def _acquire(conn: apsw.Connection, owner: str, now: int, run_id: str | None = None) -> locks.AcquireResult:
    return locks.try_acquire(conn, "sync", owner=owner, run_id=run_id, pid=100, now_ms=now, stale_ms=STALE)


# ------------------------------------------------------------------------------------ the CAS


def test_compare_and_set_between_two_owners(conn: apsw.Connection) -> None:
    first = _acquire(conn, "A", T0, run_id="ra")
    assert first.acquired and first.holder is None and first.took_over_from is None
    refused = _acquire(conn, "B", T0 + 10)
    assert not refused.acquired and refused.holder is not None
    assert (refused.holder.owner, refused.holder.run_id, refused.holder.acquired_at) == ("A", "ra", T0)
    # Not re-entrant: the same owner asking again is refused too (two runs of one daemon serialise).
    assert not _acquire(conn, "A", T0 + 10).acquired
    # Another lock name is independent.
    assert locks.try_acquire(conn, "embed", owner="B", run_id=None, pid=1, now_ms=T0, stale_ms=STALE).acquired
    assert [(h.name, h.owner) for h in locks.lock_holders(conn)] == [("embed", "B"), ("sync", "A")]


def test_release_deletes_the_row_only_for_its_owner(conn: apsw.Connection) -> None:
    _acquire(conn, "A", T0)
    assert not locks.release_lock(conn, "sync", owner="B")
    assert len(locks.lock_holders(conn)) == 1
    assert locks.release_lock(conn, "sync", owner="A")
    assert conn.execute("SELECT count(*) FROM app_locks").fetchone() == (0,)
    assert not locks.release_lock(conn, "sync", owner="A")
    assert _acquire(conn, "B", T0 + 1).acquired


def test_heartbeat_keeps_the_lock_fresh(conn: apsw.Connection) -> None:
    _acquire(conn, "A", T0)
    for step in range(1, 6):  # five heartbeats, each well inside the stale window
        assert locks.heartbeat_lock(conn, "sync", owner="A", now_ms=T0 + step * 800)
    # 4,000 ms after acquiring, far beyond STALE, but the last heartbeat is 200 ms old.
    assert not _acquire(conn, "B", T0 + 4_200).acquired
    # Exactly at the boundary the holder is still live; one ms later it is stale.
    assert not _acquire(conn, "B", T0 + 4_000 + STALE).acquired
    assert _acquire(conn, "B", T0 + 4_000 + STALE + 1).acquired
    assert not locks.heartbeat_lock(conn, "sync", owner="A", now_ms=T0 + 6_000)


def test_stale_takeover_marks_the_holders_run_abandoned(conn: apsw.Connection) -> None:
    _start_run(conn, "ra", T0, phase="dependents")
    _acquire(conn, "A", T0, run_id="ra")
    _start_run(conn, "rb", T0 + 5_000)
    result = _acquire(conn, "B", T0 + 5_000, run_id="rb")
    assert result.acquired and result.took_over_from is not None
    assert (result.took_over_from.owner, result.took_over_from.run_id) == ("A", "ra")
    [holder] = locks.lock_holders(conn)
    assert (holder.owner, holder.run_id, holder.acquired_at) == ("B", "rb", T0 + 5_000)

    dead = ledger.get_run(conn, "ra")
    assert dead is not None
    assert (dead.status, dead.phase, dead.failed_phase) == ("failed", "failed", "dependents")
    assert dead.error is not None and dead.error.code == "ABANDONED"
    assert dead.error.details["lockHeartbeatAt"] == T0
    taker = ledger.get_run(conn, "rb")
    assert taker is not None and taker.status == "running"
    # The old holder finds out: its heartbeat and release no longer touch the row.
    assert not locks.heartbeat_lock(conn, "sync", owner="A", now_ms=T0 + 5_001)
    assert not locks.release_lock(conn, "sync", owner="A")
    assert [h.owner for h in locks.lock_holders(conn)] == ["B"]


def test_unknown_lock_name_is_a_typed_error(conn: apsw.Connection) -> None:
    with pytest.raises(StoreError) as err:
        locks.try_acquire(conn, "index", owner="A", run_id=None, pid=1, now_ms=T0, stale_ms=STALE)
    assert err.value.code == "DB_ERROR"


# ----------------------------------------------------------------------------- async wrapper


async def _holders(db: Database) -> list[locks.LockInfo]:
    return await db.read(locks.lock_holders)


def _try_b(conn: apsw.Connection, stale_ms: int) -> locks.AcquireResult:
    return locks.try_acquire(conn, "sync", owner="B", run_id=None, pid=2, now_ms=now_ms(), stale_ms=stale_ms)


async def test_acquire_and_release_on_every_exit_path(db: Database) -> None:
    owner = make_owner()
    acquiring = acquire_lock(db, "sync", owner=owner, run_id=None, timeout_ms=1000, stale_ms=60_000)
    async with await acquiring as held:
        assert [h.owner for h in await _holders(db)] == [owner]
        assert held.waited_ms >= 0 and held.took_over_from is None
    assert held.released and await _holders(db) == []

    with pytest.raises(ValueError, match="boom"):
        async with await acquire_lock(db, "sync", owner=owner, run_id=None, timeout_ms=1000, stale_ms=60_000):
            raise ValueError("boom")
    assert await _holders(db) == []
    await held.release()  # idempotent: a second release does not touch anyone's row


async def test_acquire_times_out_with_lock_timeout(db: Database) -> None:
    await db.write(_start_run, "holder-run", now_ms())
    holder = await acquire_lock(db, "sync", owner="A", run_id="holder-run", timeout_ms=0, stale_ms=60_000)
    waits: list[tuple[str | None, int]] = []
    with pytest.raises(LockTimeoutError) as err:
        await acquire_lock(db, "sync", owner="B", run_id=None, timeout_ms=200, stale_ms=60_000,
                           on_wait=lambda info, waited: waits.append((info.run_id, waited)))
    error = err.value
    assert error.code == "LOCK_TIMEOUT" and error.retryable
    assert error.details["holderRunId"] == "holder-run" and error.details["holderOwner"] == "A"
    assert error.details["waitedMs"] >= 200
    assert error.retry_after_ms is not None and 0 < error.retry_after_ms <= 60_000
    assert "holder-run" in error.message
    assert waits and all(run_id == "holder-run" for run_id, _ in waits)
    assert [w for _, w in waits] == sorted(w for _, w in waits)
    assert [h.owner for h in await _holders(db)] == ["A"]
    await holder.release()


async def _held_and_waited_for(db: Database, timeout_ms: int) -> tuple[HeldLock, asyncio.Task[HeldLock]]:
    """A holds ``sync``; B's ``acquire_lock`` is a task that has started waiting for it."""
    first = await acquire_lock(db, "sync", owner="A", run_id=None, timeout_ms=0, stale_ms=60_000)
    waiting = asyncio.Event()
    task = asyncio.create_task(acquire_lock(
        db, "sync", owner="B", run_id=None, timeout_ms=timeout_ms, stale_ms=60_000,
        on_wait=lambda _info, _waited: waiting.set(),
    ))
    await waiting.wait()
    return first, task


async def test_waiter_gets_the_lock_after_release(db: Database) -> None:
    first, second_task = await _held_and_waited_for(db, timeout_ms=5_000)
    assert not second_task.done()
    await first.release()
    second = await second_task
    assert second.waited_ms > 0 and [h.owner for h in await _holders(db)] == ["B"]
    await second.release()


async def test_cancel_while_waiting_leaves_nothing_held(db: Database) -> None:
    first, task = await _held_and_waited_for(db, timeout_ms=10_000)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.release()
    assert await _holders(db) == []


async def test_cancel_during_an_attempt_in_flight_undoes_a_win(db: Database) -> None:
    """The attempt runs on the writer thread and may win after the caller was cancelled."""
    cancelled = 0
    for _ in range(20):
        task = asyncio.create_task(
            acquire_lock(db, "sync", owner="B", run_id=None, timeout_ms=1000, stale_ms=60_000)
        )
        await asyncio.sleep(0)  # let it submit its attempt, then cancel it mid-flight
        task.cancel()
        try:
            held: HeldLock | None = await task
        except asyncio.CancelledError:
            held = None
            cancelled += 1
        if held is not None:  # it completed before the cancel landed: that is a normal hold
            await held.release()
        assert await _holders(db) == []
    assert cancelled > 0  # the cancel did land mid-attempt, so the undo path ran


async def test_background_heartbeat_refreshes_lock_and_run(db: Database) -> None:
    await db.write(_start_run, "r1", now_ms())
    held = await acquire_lock(db, "sync", owner="A", run_id="r1", timeout_ms=0, stale_ms=200)
    [before] = await _holders(db)
    run_before = await db.read(ledger.get_run, "r1")
    assert run_before is not None

    async def fresher() -> bool:
        [info] = await _holders(db)
        run = await db.read(ledger.get_run, "r1")
        assert run is not None and run.heartbeat_at is not None and run_before.heartbeat_at is not None
        return info.heartbeat_at > before.heartbeat_at and run.heartbeat_at > run_before.heartbeat_at

    await wait_until_async(fresher)
    # Freshly heartbeated: another owner checking with the same stale window is refused.
    assert not (await db.write(_try_b, 200)).acquired
    await held.release()
    assert await _holders(db) == []


async def test_holder_notices_a_takeover(db: Database) -> None:
    await db.write(_start_run, "r1", now_ms())
    held = await acquire_lock(db, "sync", owner="A", run_id="r1", timeout_ms=0, stale_ms=200)
    # Another process judging by a far-future clock declares the holder dead and takes over.
    taken = await db.write(
        lambda c: locks.try_acquire(c, "sync", owner="B", run_id=None, pid=2, now_ms=now_ms() + 10_000,
                                    stale_ms=200)
    )
    assert taken.acquired and taken.took_over_from is not None and taken.took_over_from.owner == "A"

    async def lost() -> bool:
        return held.lost

    await wait_until_async(lost)
    with pytest.raises(RunError) as err:
        held.ensure_held()
    assert err.value.code == "ABANDONED"
    run = await db.read(ledger.get_run, "r1")
    assert run is not None and run.error is not None and run.error.code == "ABANDONED"
    await held.release()  # must not delete the new holder's row
    assert [h.owner for h in await _holders(db)] == ["B"]


async def test_run_heartbeat_without_a_lock(db: Database) -> None:
    await db.write(_start_run, "r1", now_ms(), "preflight")
    first = await db.read(ledger.get_run, "r1")
    assert first is not None and first.heartbeat_at is not None

    async def beaten() -> bool:
        run = await db.read(ledger.get_run, "r1")
        return run is not None and run.heartbeat_at is not None and run.heartbeat_at > first.heartbeat_at

    async with run_heartbeat(db, "r1", stale_ms=200) as beat:
        await wait_until_async(beaten)
        await db.write(lambda c: ledger.finish_run(c, "r1", status="succeeded", now_ms=now_ms()))

        async def stopped() -> bool:
            return beat.abandoned

        await wait_until_async(stopped)  # the row is no longer running: nothing left to keep alive
    run = await db.read(ledger.get_run, "r1")
    assert run is not None and run.status == "succeeded"
