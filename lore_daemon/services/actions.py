"""Recovery actions for a request that failed before (or instead of) a run.

A run's own actions come from the engine and the ledger; these cover errors a request answers with
directly (config, token, targets, rate limits). Every action is executable as it is: ``request`` is
the failed call itself (minus its progress token) or the preflight of its targets, and ``command``
is the same as a ``lore`` shell line.
"""

from __future__ import annotations

import functools
import logging
import shlex
from typing import Any

import msgspec

from lore_daemon import protocol
from lore_daemon.errors import CODES, LoreError
from lore_daemon.protocol import RecoveryAction, RpcRequest
from lore_daemon.protocol_read import GetParams
from lore_daemon.services.read_commands import read_command
from lore_daemon.services.spec import Call
from lore_daemon.sync import recovery

log = logging.getLogger(__name__)

DEFAULT_WAIT_MS = 5_000


def same_request(call: Call) -> RpcRequest | None:
    """The failed call as a client would send it again; a work-done token is never reused."""
    if call.params is None:
        return None
    params = _non_default_fields(call.params)
    params.pop("workDoneToken", None)
    return RpcRequest(method=call.method, params=params)


@functools.cache
def _fields(struct_type: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(struct_type)  # evaluates annotations: ~0.2 ms, so cache it


def _non_default_fields(params: msgspec.Struct) -> dict[str, Any]:
    """Wire form (camelCase) of the fields the caller set to something other than the default."""
    out: dict[str, Any] = {}
    for field in _fields(type(params)):
        value = getattr(params, field.name)
        if field.default is not msgspec.NODEFAULT:
            default = field.default
        elif field.default_factory is not msgspec.NODEFAULT:
            default = field.default_factory()
        else:
            default = msgspec.NODEFAULT
        if value != default:
            out[field.encode_name] = msgspec.to_builtins(value)
    return out


def command_for(call: Call) -> str | None:
    """The ``lore`` bridge line equivalent to the call."""
    p = call.params
    if isinstance(p, protocol.TargetParams):
        return recovery.surgical_command(
            p.project, p.issues, p.mrs,
            issue_urls=p.issue_urls, mr_urls=p.mr_urls, refs=p.refs,
            preflight_only=isinstance(p, protocol.PreflightParams),
            dry_run=isinstance(p, protocol.SyncSurgicalParams) and p.dry_run,
            no_embed=isinstance(p, protocol.SyncSurgicalParams) and p.no_embed,
        )
    if isinstance(p, protocol.SyncParams):
        return recovery.standard_command(p.projects or (), no_embed=p.no_embed)
    if isinstance(p, protocol.SyncRunsParams):
        words = ["lore", "sync-runs", "--limit", str(p.limit)]
        if p.run_id is not None:
            words += ["--run-id", p.run_id]
        if p.status is not None:
            words += ["--state", p.status]
        return shlex.join(words)
    if isinstance(p, protocol.StatusParams):
        return "lore status"
    if isinstance(p, protocol.RobotDocsParams):
        return "lore robot-docs"
    return read_command(p)


def _check_targets(exc: LoreError, call: Call) -> RecoveryAction | None:
    kind, iid = exc.details.get("kind"), exc.details.get("iid")
    p = call.params
    project = p.project if isinstance(p, protocol.TargetParams) else None
    if kind in ("issue", "mr") and isinstance(iid, int) and iid >= 1:
        return recovery.check_target_action(kind, iid, exc.details.get("project") or project)
    if isinstance(p, protocol.TargetParams):
        targets = protocol.PreflightParams(
            project=p.project, issues=p.issues, mrs=p.mrs,
            issue_urls=p.issue_urls, mr_urls=p.mr_urls, refs=p.refs,
        )
        check = Call("lore/preflight", targets)
        return RecoveryAction(
            kind="checkTarget",
            title="Check the targets with a preflight (no writes)",
            request=same_request(check),
            command=command_for(check),
        )
    return None


def _one(kind: str, exc: LoreError, call: Call) -> RecoveryAction | None:
    request, command = same_request(call), command_for(call)
    if kind == "fixConfig":
        return recovery.fix_config_action(exc.details.get("file"), exc.details.get("key"))
    if kind == "fixToken":
        return recovery.fix_token_action(str(exc.details.get("env") or "GITLAB_TOKEN"))
    if kind == "checkTarget":
        return _check_targets(exc, call)
    if kind == "syncTarget" and isinstance(call.params, GetParams):
        again = Call(call.method, msgspec.structs.replace(call.params, max_age_ms=0, offline=False))
        title = "Sync it from GitLab and read it (lore/get with maxAgeMs 0)"
        return RecoveryAction(
            kind="syncTarget", title=title, request=same_request(again), command=command_for(again)
        )
    if request is None:
        return None
    if kind == "waitAndRetry":
        wait_ms = exc.retry_after_ms if exc.retry_after_ms is not None else DEFAULT_WAIT_MS
        return recovery.wait_and_retry_action(request, command or "", wait_ms)
    if kind == "retryRun":
        return RecoveryAction(
            kind="retryRun", title="Send the same request again", request=request, command=command
        )
    return None  # retryFailedEntities / inspectRun need a run: the engine's results carry those


def actions_for(exc: LoreError, call: Call) -> list[RecoveryAction]:
    """The actions ``errors.CODES`` lists for the code, built for this call where possible."""
    actions: list[RecoveryAction] = []
    for kind in CODES[exc.code].actions:
        try:
            action = _one(kind, exc, call)
        except LoreError as problem:  # e.g. an unusable token_env name: skip that action only
            log.debug("no %s action for %s: %s", kind, exc.code, problem)
            continue
        if action is not None:
            actions.append(action)
    return actions
