"""Child process: a daemon that runs a surgical sync and stops INSIDE its open ingest transaction.

Usage: python crash_child.py CONFIG_PATH   (the token is read from the environment, as the daemon does)

The ingest of the second issue is wrapped to print ``{"event": "inside-ingest"}`` and then block the
writer thread, so the parent can SIGKILL the process while the transaction is open, the ``sync``
lock is held and the ledger row says ``ingest``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import apsw

from lore_daemon import protocol
from lore_daemon.config import load_config, read_token
from lore_daemon.engine import Engine
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.store.connection import Database
from lore_daemon.sync import surgical_ingest
from lore_daemon.sync.locking import make_owner
from lore_daemon.sync.surgical import run_surgical_sync

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
    config = load_config(config_path)
    db = Database(config.db_path)
    db.open()
    client = GitLabClient(config.gitlab.base_url, read_token(config).reveal())
    engine = Engine(config=config, db=db, gitlab=client, owner=make_owner())
    params = protocol.SyncSurgicalParams(project="group/project", issues=[1, 2, 3], mrs=[1])

    def progress(note: protocol.ProgressNotification) -> None:
        if note.event == "begin":
            print(json.dumps({"event": "phase", "phase": note.phase, "runId": note.run_id}), flush=True)

    await run_surgical_sync(engine, params, progress)
    print(json.dumps({"event": "finished"}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
