"""``lore/preflight``: check auth and every target against GitLab; writes nothing at all."""

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
    engine: Engine, params: protocol.PreflightParams, sink: ProgressSink
) -> protocol.PreflightResult:
    from lore_daemon.sync.surgical import run_preflight  # down the layers; loaded with the engine

    return await run_preflight(engine, params, sink)


async def serve(
    runtime: Runtime, params: protocol.PreflightParams, call: Call
) -> protocol.PreflightResult:
    require_targets(params)
    return await run_with_progress(
        runtime, params, _run,
        title="lore preflight",
        phases=("preflight",),
        outcome=lambda r: "ok" if r.ok else f"{len(r.failures)} failure(s)",
    )


SPEC = MethodSpec(
    name="lore/preflight",
    summary=(
        "Validate auth and every target remotely, concurrently, collecting every failure. "
        "Zero writes (not even a ledger row)."
    ),
    params_type=protocol.PreflightParams,
    result_type=protocol.PreflightResult,
    serve=serve,
    reports_progress=True,
    error_codes=TARGET_ERRORS,
)
