"""``lore/status``: what this daemon is, what it holds, and the state of its store. No secrets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import apsw

from lore_daemon import __version__, protocol
from lore_daemon.config import config_summary
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import LOCAL_READ_ERRORS
from lore_daemon.store import dirty, ledger, locks, queue

LAST_RUNS = 5


class _Snapshot(NamedTuple):
    locks: list[protocol.LockHolder]
    depths: dict[str, int]
    runs: list[protocol.SyncRun]


def _snapshot(conn: apsw.Connection) -> _Snapshot:
    """One read on one reader connection; WAL readers never wait for a running sync's writes."""
    depths = queue.queue_depths(conn)
    depths["dirtySources"] = dirty.dirty_count(conn)
    return _Snapshot(
        locks=[info.to_holder() for info in locks.lock_holders(conn)],
        depths=depths,
        runs=ledger.list_runs(conn, limit=LAST_RUNS),
    )


def _size_on_disk(db_file: Path) -> int:
    """The database file plus its WAL: what the mirror costs on disk right now."""
    total = 0
    for path in (db_file, db_file.with_name(db_file.name + "-wal")):
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return total


async def serve(runtime: Runtime, params: protocol.StatusParams, call: Call) -> protocol.StatusResult:
    config = runtime.config()
    db = await runtime.database()
    snap = await db.read(_snapshot)
    return protocol.StatusResult(
        version=__version__,
        uptime_ms=runtime.uptime_ms(),
        schema_version=db.schema_version,
        db_path=str(db.path),
        db_size_bytes=_size_on_disk(db.path),
        locks=snap.locks,
        queue_depths=snap.depths,
        last_runs=snap.runs,
        config=config_summary(config),
        pid=os.getpid(),
        socket_path=runtime.socket_path,
    )


SPEC = MethodSpec(
    name="lore/status",
    summary=(
        "Version, uptime, schema version, database path and size, lock holders, queue depths, "
        "the last 5 runs and the configuration summary (no secrets). Does not need the token."
    ),
    params_type=protocol.StatusParams,
    result_type=protocol.StatusResult,
    serve=serve,
    error_codes=LOCAL_READ_ERRORS,
)
