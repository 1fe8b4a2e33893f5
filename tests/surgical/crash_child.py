"""Child process: a daemon that runs a surgical sync and stops INSIDE its open ingest transaction.

Usage: python -m tests.surgical.crash_child CONFIG_PATH, from the repository root (the token is
read from the environment, as the daemon does)

The ingest of the second issue is wrapped to print ``{"event": "inside-ingest"}`` and then block the
writer thread, so the parent can SIGKILL the process while the transaction is open, the ``sync``
lock is held and the ledger row says ``ingest``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import apsw

from lore_daemon import protocol
from lore_daemon.sync import surgical_ingest
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support.engine import build_engine

_original = surgical_ingest.ingest_issue
_calls: list[int] = []


def _pausing_ingest_issue(conn: apsw.Connection, *args: Any, **kwargs: Any) -> Any:
    outcome = _original(conn, *args, **kwargs)
    _calls.append(1)
    if len(_calls) == 2:
        print(json.dumps({"event": "inside-ingest", "inTransaction": conn.in_transaction}), flush=True)
        time.sleep(600)  # the parent kills us here
    return outcome


async def main(config_path: str) -> None:
    surgical_ingest.ingest_issue = _pausing_ingest_issue  # type: ignore[assignment]
    engine = build_engine(Path(config_path), retry=None)  # the daemon's own retry policy
    params = protocol.SyncSurgicalParams(project="group/project", issues=[1, 2, 3], mrs=[1])

    def progress(note: protocol.ProgressNotification) -> None:
        if note.event == "begin":
            print(json.dumps({"event": "phase", "phase": note.phase, "runId": note.run_id}), flush=True)

    await run_surgical_sync(engine, params, progress)
    print(json.dumps({"event": "finished"}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
