"""``lore/syncSurgical``: refresh exactly the named issues and MRs, end to end."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lore_daemon import protocol
from lore_daemon.services.runs import run_with_progress
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import TARGET_ERRORS, require_targets

if TYPE_CHECKING:  # the engine pulls in httpx: keep it off the start-up path
    from lore_daemon.engine import Engine, ProgressSink


async def _run(
    engine: Engine, params: protocol.SyncSurgicalParams, sink: ProgressSink
) -> protocol.SyncResult:
    from lore_daemon.sync.surgical import run_surgical_sync  # down the layers; loaded with the engine

    return await run_surgical_sync(engine, params, sink)


async def serve(
    runtime: Runtime, params: protocol.SyncSurgicalParams, call: Call
) -> protocol.SyncResult:
    require_targets(params)
    return await run_with_progress(
        runtime, params, _run,
        title="lore surgical sync",
        phases=protocol.SURGICAL_PHASES,
        outcome=lambda r: r.status,
    )


SPEC = MethodSpec(
    name="lore/syncSurgical",
    summary=(
        "Surgical sync of the named issues/MRs (IIDs, URLs, references): preflight, ingest, "
        "dependents, docs, embed. Returns a SyncResult whatever the run's status; dryRun makes "
        "zero network calls and zero writes."
    ),
    params_type=protocol.SyncSurgicalParams,
    result_type=protocol.SyncResult,
    serve=serve,
    reports_progress=True,
    error_codes=(*TARGET_ERRORS, "LOCK_TIMEOUT"),
)
