"""Child process for the multi-process lock tests: one "daemon" running one run that takes a lock.

Usage: python lock_child.py DB_PATH RUN_ID HOLD_MS STALE_MS TIMEOUT_MS

It records a surgical run in the ledger, heartbeats it while waiting for the ``sync`` lock, takes the
lock, moves the run to ``dependents`` and keeps writing ledger updates while it holds the lock
(so a SIGKILL lands in the middle of real write traffic). HOLD_MS < 0 holds until the file
``DB_PATH.RUN_ID.release`` appears (or the process is killed). Each
step is printed as one JSON line on stdout, flushed, for the parent to read.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import apsw

from lore_daemon.protocol import Counters, RequestedTargets
from lore_daemon.store import ledger, locks
from lore_daemon.store.connection import Database
from lore_daemon.sync.locking import acquire_lock, make_owner, run_heartbeat
from lore_daemon.timeutil import now_ms


def _record_progress(conn: apsw.Connection, run_id: str, beats: int) -> None:
    ledger.update_run(conn, run_id, now_ms=now_ms(), counters=Counters(events=beats))


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": now_ms(), "pid": os.getpid(), **fields}), flush=True)


async def main(db_path: str, run_id: str, hold_ms: int, stale_ms: int, timeout_ms: int) -> None:
    db = Database(db_path)
    db.open()
    owner = make_owner()
    await db.write(
        lambda c: ledger.start_run(
            c, run_id=run_id, mode="surgical", phase="preflight", project="g/p",
            requested=RequestedTargets(issues=[1]), owner=owner, pid=os.getpid(), now_ms=now_ms(),
        )
    )
    emit("started", owner=owner)
    reported: set[str] = set()

    def on_wait(holder: locks.LockInfo, waited_ms: int) -> None:
        if holder.owner not in reported:  # one line per distinct holder is enough
            reported.add(holder.owner)
            emit("waiting", holderOwner=holder.owner, holderRunId=holder.run_id, waitedMs=waited_ms)

    async with run_heartbeat(db, run_id, stale_ms=stale_ms):
        held = await acquire_lock(
            db, "sync", owner=owner, run_id=run_id, timeout_ms=timeout_ms, stale_ms=stale_ms, on_wait=on_wait
        )
    took = held.took_over_from
    emit("acquired", owner=owner, waitedMs=held.waited_ms,
         tookOverFrom=None if took is None else {"owner": took.owner, "runId": took.run_id, "pid": took.pid})
    async with held:
        await db.write(lambda c: ledger.update_run(c, run_id, now_ms=now_ms(), phase="dependents"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold_ms / 1000 if hold_ms >= 0 else float("inf")
        sentinel = Path(f"{db_path}.{run_id}.release")
        beats = 0
        while loop.time() < deadline and not sentinel.exists():
            holders = await db.read(locks.lock_holders)
            if [h.owner for h in holders if h.name == "sync"] != [owner]:
                emit("violation", holders=[h.owner for h in holders])
                raise SystemExit(3)
            beats += 1
            await db.write(_record_progress, run_id, beats)
            await asyncio.sleep(0.01)
        emit("releasing")
    await db.write(lambda c: ledger.finish_run(c, run_id, status="succeeded", now_ms=now_ms()))
    emit("done")
    db.close()


if __name__ == "__main__":
    path, run, hold, stale, timeout = sys.argv[1:6]
    asyncio.run(main(path, run, int(hold), int(stale), int(timeout)))
