"""``lore/get``: one issue or MR from the mirror, with read-through surgical sync (SPEC §12).

1. The target is resolved offline (``ref``, ``url`` or ``kind`` + ``iid``; a URL of another
   host is rejected before anything else).
2. The local copy is read on a reader connection.
3. With ``maxAgeMs`` (and not ``offline``), a missing copy, or one last written from GitLab
   longer ago than that, is first refreshed by a surgical sync of that one entity — the same
   entry point ``lore/syncSurgical`` uses, with its progress — and read again: ``local.source``
   is then ``synced`` and ``sync`` carries the run's ``SyncResult``.
4. If that sync fails (or cannot start: no token, GitLab down) and a local copy exists, the copy
   is returned with a warning saying why it is stale; with no copy, the failure is the answer.

``offline: true`` never touches the network; an entity not in the mirror is then
``NOT_IN_MIRROR``, whose ``syncTarget`` action is this same call with ``maxAgeMs: 0``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from lore_daemon import protocol
from lore_daemon.errors import LoreError, NotInMirrorError
from lore_daemon.protocol_read import EntityDetail, GetParams
from lore_daemon.services.read_targets import GetTarget, resolve_get_target
from lore_daemon.services.runs import run_with_progress
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import TARGET_ERRORS
from lore_daemon.store import read_entity
from lore_daemon.timeutil import now_ms

if TYPE_CHECKING:  # the engine pulls in httpx: keep it off the start-up path
    from lore_daemon.engine import Engine, ProgressSink


async def _sync(
    engine: Engine, params: protocol.SyncSurgicalParams, sink: ProgressSink
) -> protocol.SyncResult:
    from lore_daemon.sync.surgical import run_surgical_sync  # down the layers; loaded with the engine

    return await run_surgical_sync(engine, params, sink)


def _not_in_mirror(target: GetTarget, params: GetParams) -> NotInMirrorError:
    why = "offline: true" if params.offline else "no maxAgeMs"
    return NotInMirrorError(
        f"{target.ref} is not in the local mirror, and this read may not sync it ({why}).",
        "NOT_IN_MIRROR",
        "Read it with maxAgeMs: 0 (a surgical sync brings it in first), or sync it with lore/syncSurgical.",
        details={"kind": target.kind, "iid": target.iid, "project": target.project},
    )


def _needs_sync(params: GetParams, local: EntityDetail | None) -> bool:
    if params.offline or params.max_age_ms is None:
        return False
    return local is None or local.local.age_ms > params.max_age_ms


def _stale(local: EntityDetail, reason: str, sync: protocol.SyncResult | None = None) -> EntityDetail:
    seen = local.local.last_seen_at.isoformat(timespec="milliseconds")
    warning = f"{reason}; this is the local copy last synced at {seen} ({local.local.age_ms} ms ago)"
    return msgspec.structs.replace(local, sync=sync, warnings=[*local.warnings, warning])


def _failure(target: GetTarget, result: protocol.SyncResult) -> LoreError:
    """The answer when the read-through sync failed and there is no local copy to fall back on."""
    failure = next(iter(result.entity_failures), None)
    code = failure.code if failure is not None else (result.error.code if result.error else "INTERNAL")
    message = failure.message if failure is not None else (result.error.message if result.error else "")
    return LoreError(
        f"{target.ref} is not in the mirror and the read-through sync failed: {message}",
        code,
        f"The run is in the ledger: lore/syncRuns runId={result.run_id}.",
        details={"kind": target.kind, "iid": target.iid, "project": target.project, "runId": result.run_id},
        http_status=failure.http_status if failure is not None else None,
    )


def _sync_warnings(result: protocol.SyncResult) -> list[str]:
    if result.status == "succeeded":
        return []
    failed = ", ".join(f"{f.stage} ({f.code})" for f in result.entity_failures) or result.status
    return [f"the read-through sync ended {result.status}: {failed}; the rest is fresh"]


async def serve(runtime: Runtime, params: GetParams, call: Call) -> EntityDetail:
    target = resolve_get_target(runtime.config(), params)
    db = await runtime.database()
    include = tuple(dict.fromkeys(params.include))

    async def read() -> EntityDetail | None:
        return await db.read(
            read_entity.load_detail, target.project, target.kind, target.iid, include, now_ms()
        )

    local = await read()
    if not _needs_sync(params, local):
        if local is None:
            raise _not_in_mirror(target, params)
        if params.offline and params.max_age_ms is not None and local.local.age_ms > params.max_age_ms:
            return _stale(local, f"older than maxAgeMs ({params.max_age_ms} ms) but offline: not refreshed")
        return local
    sync_params = protocol.SyncSurgicalParams(
        project=target.project,
        issues=[target.iid] if target.kind == "issue" else [],
        mrs=[target.iid] if target.kind == "mr" else [],
        work_done_token=params.work_done_token,
    )
    try:
        result = await run_with_progress(
            runtime, sync_params, _sync,
            title=f"lore get {target.ref}",
            phases=protocol.SURGICAL_PHASES,
            outcome=lambda r: r.status,
        )
    except asyncio.CancelledError:
        raise
    except LoreError as exc:
        if local is None:
            raise
        return _stale(local, f"the read-through sync could not run ({exc.code}: {exc.message})")
    if result.status not in ("succeeded", "partial"):
        if local is None:
            raise _failure(target, result)
        code = result.error.code if result.error else result.status
        return _stale(local, f"the read-through sync failed ({code}, run {result.run_id})", result)
    fresh = await read()
    if fresh is None:  # synced as skippedStale and then gone, or the project moved: keep what we had
        if local is None:
            raise _failure(target, result)
        return _stale(local, "the read-through sync did not leave a copy to read", result)
    return msgspec.structs.replace(
        fresh,
        local=msgspec.structs.replace(fresh.local, source="synced"),
        sync=result,
        warnings=_sync_warnings(result),
    )


SPEC = MethodSpec(
    name="lore/get",
    summary=(
        "One issue or MR from the mirror (ref, url, or project + kind + iid) with its discussions "
        "and notes, events, links both ways and file changes (include). With maxAgeMs a missing "
        "or older copy is refreshed first by a surgical sync of that entity (read-through); "
        "offline never touches the network."
    ),
    params_type=GetParams,
    result_type=EntityDetail,
    serve=serve,
    reports_progress=True,
    error_codes=(*TARGET_ERRORS, "LOCK_TIMEOUT", "NOT_IN_MIRROR"),
)
