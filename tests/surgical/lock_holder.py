"""Child process: another daemon holding the ``sync`` lock until told to let go.

Usage: python lock_holder.py DB_PATH

Takes the lock (compare-and-set, like any daemon), prints ``{"event": "held", "pid": ...}``, then
waits for one line on stdin, releases the lock, prints ``{"event": "released"}`` and exits.
"""

from __future__ import annotations

import json
import os
import sys

from lore_daemon.store import locks
from lore_daemon.store.connection import open_connection
from lore_daemon.sync.locking import make_owner
from lore_daemon.timeutil import now_ms


def main(db_path: str) -> None:
    conn = open_connection(db_path)
    owner = make_owner()
    taken = locks.try_acquire(
        conn,
        "sync",
        owner=owner,
        run_id="other-daemon-run",
        pid=os.getpid(),
        now_ms=now_ms(),
        stale_ms=60_000,
    )
    if not taken.acquired:
        raise SystemExit("the sync lock was not free")
    print(json.dumps({"event": "held", "pid": os.getpid(), "owner": owner}), flush=True)
    sys.stdin.readline()
    locks.release_lock(conn, "sync", owner=owner)
    conn.close()
    print(json.dumps({"event": "released"}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
