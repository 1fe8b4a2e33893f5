"""Cross-process application locks (``app_locks``): ``sync`` and ``embed``.

A row exists only while its lock is held. Taking a lock is a compare-and-set inside one
``BEGIN IMMEDIATE`` transaction: SQLite lets one writer in at a time across every process on the
file, so the read of the current row and the insert/replace cannot interleave with another
daemon's. A holder proves it is alive by heartbeating; a row whose heartbeat is older than
``stale_ms`` belongs to a dead process and may be taken over — in the same transaction the dead
holder's run is closed as ``ABANDONED`` (docs/surgical-sync.md, invariants 5 and 11).

``owner`` identifies a daemon process (``sync.locking.make_owner``). Ownership is not re-entrant:
two runs of one process contend for a lock like runs of two processes do.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from lore_daemon.errors import StoreError
from lore_daemon.protocol import LockHolder
from lore_daemon.store import ledger
from lore_daemon.timeutil import ms_to_datetime

LOCK_NAMES: tuple[str, ...] = ("sync", "embed")


@dataclass(frozen=True, slots=True)
class LockInfo:
    """One held lock as its row says. Times are epoch milliseconds."""

    name: str
    owner: str
    run_id: str | None
    pid: int
    acquired_at: int
    heartbeat_at: int

    def to_holder(self) -> LockHolder:
        """The wire form ``lore/status`` reports."""
        return LockHolder(
            name=self.name,
            owner=self.owner,
            run_id=self.run_id,
            pid=self.pid,
            acquired_at=ms_to_datetime(self.acquired_at),
            heartbeat_at=ms_to_datetime(self.heartbeat_at),
        )


@dataclass(frozen=True, slots=True)
class AcquireResult:
    """``acquired`` tells whether we hold it now; ``holder`` is who does when we do not.

    ``took_over_from`` is the stale holder we replaced (its run was marked ABANDONED).
    """

    acquired: bool
    holder: LockInfo | None = None
    took_over_from: LockInfo | None = None


def _info(row: tuple[object, ...]) -> LockInfo:
    name, owner, run_id, pid, acquired_at, heartbeat_at = row
    return LockInfo(
        name=str(name),
        owner=str(owner),
        run_id=None if run_id is None else str(run_id),
        pid=int(pid),  # type: ignore[call-overload]
        acquired_at=int(acquired_at),  # type: ignore[call-overload]
        heartbeat_at=int(heartbeat_at),  # type: ignore[call-overload]
    )


def _current(conn: apsw.Connection, name: str) -> LockInfo | None:
    row = conn.execute(
        "SELECT name, owner, run_id, pid, acquired_at, heartbeat_at FROM app_locks WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else _info(row)


def try_acquire(
    conn: apsw.Connection,
    name: str,
    *,
    owner: str,
    run_id: str | None,
    pid: int,
    now_ms: int,
    stale_ms: int,
) -> AcquireResult:
    """One compare-and-set attempt; never waits for the lock itself (only for SQLite's write lock).

    No row → insert it. A row whose heartbeat is older than ``now_ms - stale_ms`` → replace it and
    mark the old holder's run ABANDONED, atomically. Otherwise → not acquired, holder returned.
    Must be called on a connection whose ``with conn:`` is ``BEGIN IMMEDIATE`` (the writer).
    """
    if name not in LOCK_NAMES:
        raise StoreError(
            f"Unknown application lock {name!r}.",
            "DB_ERROR",
            f"Use one of {', '.join(LOCK_NAMES)}.",
            details={"lock": name},
        )
    took_over: LockInfo | None = None
    with conn:
        holder = _current(conn, name)
        if holder is not None:
            if holder.heartbeat_at >= now_ms - stale_ms:
                return AcquireResult(acquired=False, holder=holder)
            conn.execute("DELETE FROM app_locks WHERE name = ? AND owner = ?", (name, holder.owner))
            if holder.run_id is not None:
                ledger.abandon_run(
                    conn, holder.run_id, now_ms=now_ms, lock=name, lock_heartbeat_at=holder.heartbeat_at
                )
            took_over = holder
        conn.execute(
            "INSERT INTO app_locks (name, owner, run_id, pid, acquired_at, heartbeat_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, owner, run_id, pid, now_ms, now_ms),
        )
    return AcquireResult(acquired=True, took_over_from=took_over)


def heartbeat_lock(conn: apsw.Connection, name: str, *, owner: str, now_ms: int) -> bool:
    """Refresh our heartbeat. False when we no longer hold the lock (released or taken over)."""
    with conn:
        conn.execute(
            "UPDATE app_locks SET heartbeat_at = ? WHERE name = ? AND owner = ?", (now_ms, name, owner)
        )
        held = conn.changes() > 0
    return held


def release_lock(conn: apsw.Connection, name: str, *, owner: str) -> bool:
    """Delete our row. False when it was not ours (already released, or taken over as stale)."""
    with conn:
        conn.execute("DELETE FROM app_locks WHERE name = ? AND owner = ?", (name, owner))
        released = conn.changes() > 0
    return released


def lock_holders(conn: apsw.Connection) -> list[LockInfo]:
    """Every lock held right now, by name."""
    rows = conn.execute(
        "SELECT name, owner, run_id, pid, acquired_at, heartbeat_at FROM app_locks ORDER BY name"
    ).fetchall()
    return [_info(row) for row in rows]
