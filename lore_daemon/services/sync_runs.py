"""``lore/syncRuns``: the run ledger, newest first, with ``limit`` / ``runId`` / ``status`` filters."""

from __future__ import annotations

import apsw

from lore_daemon import protocol
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import LOCAL_READ_ERRORS
from lore_daemon.store import ledger


def _runs(conn: apsw.Connection, params: protocol.SyncRunsParams) -> list[protocol.SyncRun]:
    return ledger.list_runs(conn, limit=params.limit, run_id=params.run_id, status=params.status)


async def serve(
    runtime: Runtime, params: protocol.SyncRunsParams, call: Call
) -> protocol.SyncRunsResult:
    db = await runtime.database()
    return protocol.SyncRunsResult(runs=await db.read(_runs, params))


SPEC = MethodSpec(
    name="lore/syncRuns",
    summary=(
        "Read the run ledger newest first; filters: limit (1-1000, default 20), runId, status. "
        "Failed, partial and cancelled runs carry suggestedRetry and suggestedRetryCommand."
    ),
    params_type=protocol.SyncRunsParams,
    result_type=protocol.SyncRunsResult,
    serve=serve,
    error_codes=LOCAL_READ_ERRORS,
)
