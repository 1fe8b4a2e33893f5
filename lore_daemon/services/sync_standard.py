"""``lore/sync``: the standard incremental sync of the configured projects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lore_daemon import protocol
from lore_daemon.services.runs import run_with_progress
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import STANDARD_ERRORS

if TYPE_CHECKING:  # the engine pulls in httpx: keep it off the start-up path
    from lore_daemon.engine import Engine, ProgressSink


async def _run(engine: Engine, params: protocol.SyncParams, sink: ProgressSink) -> protocol.SyncResult:
    from lore_daemon.sync.standard import run_standard_sync  # down the layers; loaded with the engine

    return await run_standard_sync(engine, params, sink)


async def serve(runtime: Runtime, params: protocol.SyncParams, call: Call) -> protocol.SyncResult:
    return await run_with_progress(
        runtime, params, _run,
        title="lore sync",
        phases=protocol.STANDARD_PHASES,
        outcome=lambda r: r.status,
    )


SPEC = MethodSpec(
    name="lore/sync",
    summary=(
        "Standard incremental sync of every configured project (or the listed ones): issues and "
        "MRs since the cursor, then the dependent-job queue, documents and embeddings."
    ),
    params_type=protocol.SyncParams,
    result_type=protocol.SyncResult,
    serve=serve,
    reports_progress=True,
    error_codes=STANDARD_ERRORS,
)
