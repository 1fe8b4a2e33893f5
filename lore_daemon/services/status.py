"""``lore/status``: what this daemon is, what it holds, and the state of its store. No secrets."""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import apsw

from lore_daemon import __version__, protocol
from lore_daemon.config import config_summary
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import LOCAL_READ_ERRORS
from lore_daemon.store import dirty, ledger, locks, queue, vectors
from lore_daemon.sync.context import robot_error
from lore_daemon.timeutil import ms_to_datetime

if TYPE_CHECKING:
    from lore_daemon.embedding.service import EmbeddingService

LAST_RUNS = 5


class _Snapshot(NamedTuple):
    locks: list[protocol.LockHolder]
    depths: dict[str, int]
    runs: list[protocol.SyncRun]
    vectors: vectors.VectorCounts | None
    documents: int


def _snapshot(conn: apsw.Connection, key: vectors.VectorKey | None) -> _Snapshot:
    """One read on one reader connection; WAL readers never wait for a running sync's writes."""
    depths = queue.queue_depths(conn)
    depths["dirtySources"] = dirty.dirty_count(conn)
    return _Snapshot(
        locks=[info.to_holder() for info in locks.lock_holders(conn)],
        depths=depths,
        runs=ledger.list_runs(conn, limit=LAST_RUNS),
        vectors=vectors.vector_counts(conn, key) if key is not None else None,
        documents=vectors.count_documents(conn),
    )


def _embedding(service: EmbeddingService, snap: _Snapshot) -> protocol.EmbeddingStatus:
    """Provider, model, health, and documents with current vectors out of all documents."""
    config, health, counts = service.embedding, service.health(), snap.vectors
    current = counts.current if counts else 0
    parked = counts.parked if counts else 0
    return protocol.EmbeddingStatus(
        provider=config.provider,
        model=config.model,
        model_key=service.key.model if service.key else None,
        dimensions=counts.dims if counts else None,
        state=health.state,
        documents=snap.documents,
        current_documents=current,
        pending_documents=snap.documents - current - parked if service.enabled else 0,
        parked_documents=parked,
        vectors=counts.vectors if counts else 0,
        error=robot_error(health.error) if health.error is not None else None,
        checked_at=ms_to_datetime(health.checked_at_ms) if health.checked_at_ms else None,
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
    service = await asyncio.to_thread(runtime.embeddings)  # first call imports numpy
    snap = await db.read(functools.partial(_snapshot, key=service.key))
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
        embedding=_embedding(service, snap),
    )


SPEC = MethodSpec(
    name="lore/status",
    summary=(
        "Version, uptime, schema version, database path and size, lock holders, queue depths, "
        "the last 5 runs, the configuration summary (no secrets) and embeddings: provider, model, "
        "health and documents with current vectors. Does not need the token."
    ),
    params_type=protocol.StatusParams,
    result_type=protocol.StatusResult,
    serve=serve,
    error_codes=LOCAL_READ_ERRORS,
)
