"""Recovery actions: every ``RecoveryAction`` a client can receive is built here.

An action is executable as it is (docs/protocol.md, "Recovery actions"): ``request`` is the exact
JSON-RPC call, built from the protocol's own params Structs by :func:`wire_params` (so it always
validates), and ``command`` is the same call as a ``lore`` bridge shell line, built from the same
Struct by :func:`command_for` (every value shell-quoted). A test parses every action's command
with the bridge's real argument parser and checks it gives exactly the action's request.

This module sits in the bottom layer (docs/architecture.md, "Layers"): it imports only
``protocol`` and ``errors``, so the store's ledger, the sync pipelines and the services all build
their actions here.
"""

from __future__ import annotations

import functools
import logging
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import msgspec

from lore_daemon import protocol, protocol_read
from lore_daemon.errors import CODES, ConfigError, LoreError
from lore_daemon.protocol import EntityFailure, EntityKind, RecoveryAction, RpcRequest, SyncRun

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_MS = 5_000  # a transient failure with no Retry-After hint: wait a little
MAX_CHECK_TARGET_ACTIONS = 10
AUTH_CODES = frozenset({"GITLAB_AUTH_FAILED", "GITLAB_FORBIDDEN"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_METHODS: dict[type[msgspec.Struct], str] = {
    protocol.PreflightParams: "lore/preflight",
    protocol.SyncSurgicalParams: "lore/syncSurgical",
    protocol.SyncParams: "lore/sync",
    protocol.SyncRunsParams: "lore/syncRuns",
    protocol.StatusParams: "lore/status",
    protocol.RobotDocsParams: "lore/robotDocs",
    protocol_read.GetParams: "lore/get",
    protocol_read.ListParams: "lore/list",
    protocol_read.SearchParams: "lore/search",
}


class Targets(Protocol):
    """Resolved surgical targets (``gitlab.targets.ResolvedTargets`` has this shape)."""

    @property
    def project(self) -> str: ...
    @property
    def issues(self) -> Sequence[int]: ...
    @property
    def mrs(self) -> Sequence[int]: ...


# ----------------------------------------------------------------------- request and command


@functools.cache
def _wire_fields(struct_type: type[msgspec.Struct]) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, wire name, default) per field; cached: reflecting on the type each time
    dominated ``lore/syncRuns``'s latency (it builds a suggested retry per listed run)."""
    return tuple(
        (f.name, f.encode_name, _default(f))
        for f in msgspec.structs.fields(struct_type)
        if f.encode_name != "workDoneToken"  # a work-done token is never reused
    )


def _default(field: msgspec.structs.FieldInfo) -> Any:
    """A field's default; ``NODEFAULT`` for a required one (``lore/search``'s query), which no
    value equals, so it is always sent."""
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return msgspec.NODEFAULT


def wire_params(params: msgspec.Struct) -> dict[str, Any]:
    """Params as a client sends them: camelCase keys, fields equal to their default left out."""
    built: dict[str, Any] = {}
    for name, wire_name, default in _wire_fields(type(params)):
        value = getattr(params, name)
        if value != default:
            built[wire_name] = msgspec.to_builtins(value)
    return built


def request_for(params: msgspec.Struct, method: str | None = None) -> RpcRequest:
    """The JSON-RPC call carrying ``params`` (the method follows from the params type)."""
    return RpcRequest(method=method or _METHODS[type(params)], params=wire_params(params))


def command_for(params: msgspec.Struct | None) -> str | None:
    """The ``lore`` bridge line equivalent to the call with ``params``; None when it has none."""
    p = params
    if isinstance(p, protocol.TargetParams):
        words = ["lore", "sync"]
        if p.project is not None:
            words += ["-p", p.project]
        for flag, values in (("--issue", p.issues), ("--mr", p.mrs), ("--issue-url", p.issue_urls),
                             ("--mr-url", p.mr_urls), ("--ref", p.refs)):
            for value in values:
                words += [flag, str(value)]
        if isinstance(p, protocol.SyncSurgicalParams):
            words += ["--dry-run"] * p.dry_run + ["--no-embed"] * p.no_embed
        else:
            words.append("--preflight-only")
        return shlex.join(words)
    if isinstance(p, protocol.SyncParams):
        if p.projects == []:  # "sync no project" has no bridge spelling (and fails: CONFIG_INVALID)
            return None
        words = ["lore", "sync"]
        for project in p.projects or ():
            words += ["-p", project]
        return shlex.join(words + ["--no-embed"] * p.no_embed + ["--reembed"] * p.reembed)
    if isinstance(p, protocol.SyncRunsParams):
        words = ["lore", "sync-runs"]
        wire = wire_params(p)
        for flag, name in (("--limit", "limit"), ("--run-id", "runId"), ("--state", "status")):
            if name in wire:
                words += [flag, str(wire[name])]
        return shlex.join(words)
    if isinstance(p, protocol.StatusParams):
        return "lore status"
    if isinstance(p, protocol.RobotDocsParams):
        return "lore robot-docs"
    return None  # the read methods: the bridge has no spelling for them yet (no command, no wrong one)


def action(
    kind: protocol.ActionKind, title: str, params: msgspec.Struct, *,
    method: str | None = None, after_ms: int | None = None,
) -> RecoveryAction:
    """An action that sends ``params`` (its request and its command built from the same Struct)."""
    return RecoveryAction(
        kind=kind, title=title, request=request_for(params, method), command=command_for(params),
        after_ms=None if after_ms is None else max(0, after_ms),
    )


def wait_ms(hint: int | None) -> int:
    """How long a ``waitAndRetry`` waits: GitLab's hint (Retry-After), else the default."""
    return hint if hint is not None else DEFAULT_RETRY_AFTER_MS


def wait_and_retry_action(
    params: msgspec.Struct, after_ms: int, *, method: str | None = None
) -> RecoveryAction:
    """Send the same request again after ``after_ms`` (rate limits, lock contention, outages)."""
    return action("waitAndRetry", f"Wait {after_ms / 1000:.1f} s, then retry", params,
                  method=method, after_ms=after_ms)


# ------------------------------------------------------------------------------ single actions


def _unique(values: Iterable[int]) -> list[int]:
    """Deduplicate, keeping first-seen order (the order the caller named the targets in)."""
    return list(dict.fromkeys(values))


def _surgical(targets: Targets, *, issues: Sequence[int] | None = None, mrs: Sequence[int] | None = None,
              no_embed: bool = False) -> protocol.SyncSurgicalParams:
    return protocol.SyncSurgicalParams(
        project=targets.project, no_embed=no_embed,
        issues=list(targets.issues if issues is None else issues),
        mrs=list(targets.mrs if mrs is None else mrs),
    )


def _preflight(targets: Targets) -> protocol.PreflightParams:
    return protocol.PreflightParams(
        project=targets.project, issues=list(targets.issues), mrs=list(targets.mrs)
    )


def retry_run_action(run: SyncRun) -> RecoveryAction:
    """Send the run's original request again (same targets, same project, same mode). Runs
    started with ``noEmbed`` record it in their surgical summary, and the retry keeps it."""
    no_embed = bool(run.surgical_summary and run.surgical_summary.get("noEmbed") is True)
    req = run.requested
    if run.mode == "surgical":
        params = protocol.SyncSurgicalParams(
            project=run.project, issues=list(req.issues), mrs=list(req.mrs),
            issue_urls=list(req.issue_urls), mr_urls=list(req.mr_urls), refs=list(req.refs),
            no_embed=no_embed,
        )
        return action("retryRun", f"Retry surgical run {run.run_id} with the same targets", params)
    projects = list(req.projects) or ([run.project] if run.project else [])
    standard = protocol.SyncParams(projects=projects or None, no_embed=no_embed)
    return action("retryRun", f"Retry standard sync run {run.run_id}", standard)


def _failed_entities(project: str, failures: list[EntityFailure]) -> protocol.SyncSurgicalParams | None:
    """The entities to re-sync surgically. Embedding failures are left out: a re-sync of unchanged
    entities regenerates (and embeds) nothing, so ``retry_embedding_action`` covers them."""
    failures = [f for f in failures if f.stage != "embed"]
    issues = _unique(f.iid for f in failures if f.kind == "issue")
    mrs = _unique(f.iid for f in failures if f.kind == "mr")
    return protocol.SyncSurgicalParams(project=project, issues=issues, mrs=mrs) if issues or mrs else None


def retry_failed_entities_action(project: str, failures: list[EntityFailure]) -> RecoveryAction | None:
    """Surgically re-sync only the entities that failed; None when nothing failed."""
    params = _failed_entities(project, failures)
    if params is None:
        return None
    count = len(params.issues) + len(params.mrs)
    title = f"Retry the {count} failed {'entity' if count == 1 else 'entities'} in {project}"
    return action("retryFailedEntities", title, params)


def retry_embedding_action(projects: Sequence[str], failures: list[EntityFailure]) -> RecoveryAction | None:
    """A standard sync of the projects: its embed phase backfills every document still without a
    current vector. None when no embedding failed."""
    count = len({(f.kind, f.iid) for f in failures if f.stage == "embed"})
    if not count:
        return None
    title = (f"Embed the documents of the {count} {'entity' if count == 1 else 'entities'} whose "
             "embedding failed (a standard sync backfills every document without a current vector)")
    return action("retryEmbedding", title, protocol.SyncParams(projects=list(projects) or None))


def fix_token_action(token_env: str) -> RecoveryAction:
    """Tell the user which env var to set. Names the variable only: a token value never appears."""
    if not _ENV_NAME.match(token_env):
        raise ConfigError(
            f"gitlab.token_env {token_env!r} is not a valid environment variable name.",
            "CONFIG_INVALID",
            "Set gitlab.token_env to a name like GITLAB_TOKEN.",
            details={"key": "gitlab.token_env"},
        )
    return RecoveryAction(
        kind="fixToken",
        title=f"Set {token_env} to a GitLab personal access token with read_api scope, then restart",
        request=None,
        command=f"export {token_env}=…",
    )


def fix_config_action(file: str | None, key: str | None) -> RecoveryAction:
    """Point at the configuration file (and key) to edit; the command opens it in $EDITOR."""
    where = file if file is not None else "the lore configuration file"
    title = f"Fix {key} in {where}" if key else f"Fix {where}"
    command = f"${{EDITOR:-vi}} {shlex.quote(file)}" if file is not None else None
    return RecoveryAction(kind="fixConfig", title=title, request=None, command=command)


def check_target_action(kind: EntityKind, iid: int, project: str | None) -> RecoveryAction:
    """Validate one target remotely with ``lore/preflight`` (zero writes) to see why it fails."""
    params = protocol.PreflightParams(
        project=project, issues=[iid] if kind == "issue" else [], mrs=[iid] if kind == "mr" else []
    )
    label = f"#{iid}" if kind == "issue" else f"!{iid}"
    where = f" in {project}" if project else ""
    return action("checkTarget", f"Check that {label}{where} exists and the token can read it", params)


def sync_target_action(params: protocol_read.GetParams) -> RecoveryAction:
    """For a read that found nothing locally: the same ``lore/get`` with ``maxAgeMs: 0``, which
    surgically syncs the entity into the mirror first."""
    again = msgspec.structs.replace(params, max_age_ms=0, offline=False)
    return action("syncTarget", "Sync it from GitLab and read it (lore/get with maxAgeMs 0)", again)


def inspect_run_action(run_id: str) -> RecoveryAction:
    """Read one run's ledger row (phase, counters, failures, its own suggested retry)."""
    return action("inspectRun", f"Inspect run {run_id}", protocol.SyncRunsParams(run_id=run_id))


def suggested_retry(run: SyncRun) -> RecoveryAction | None:
    """The one action ``lore/syncRuns`` suggests for a finished run that did not fully succeed.

    A ``partial`` surgical run wrote its primaries; only the entities with failures need another
    pass. A ``failed`` run wrote nothing (primary atomicity) or died, and a ``cancelled`` one
    stopped early, so those retry the whole request.
    """
    if run.status not in ("failed", "partial", "cancelled"):
        return None
    if run.status == "partial" and run.mode == "surgical" and run.project is not None:
        retry = retry_failed_entities_action(run.project, run.failures)
        if retry is None:
            retry = retry_embedding_action([run.project], run.failures)
        if retry is not None:
            return retry
    return retry_run_action(run)


# ------------------------------------------------------------------------------- surgical runs


def _check_targets(project: str, failures: list[EntityFailure]) -> list[RecoveryAction]:
    seen = dict.fromkeys((f.kind, f.iid) for f in failures if not f.retryable)
    return [check_target_action(kind, iid, project) for kind, iid in list(seen)[:MAX_CHECK_TARGET_ACTIONS]]


def preflight_failed_actions(
    targets: Targets, failures: list[EntityFailure], *, token_env: str, retry_after_ms: int | None,
    no_embed: bool,
) -> list[RecoveryAction]:
    """Nothing was written: fix what is permanent, wait out what is transient, then send it again.

    When some targets are permanently unfetchable (e.g. deleted), a ``retryRun`` without them lets
    the rest sync now.
    """
    actions: list[RecoveryAction] = []
    if any(f.code in AUTH_CODES for f in failures):
        actions.append(fix_token_action(token_env))
    actions.extend(_check_targets(targets.project, failures))
    if any(f.retryable for f in failures):
        actions.append(wait_and_retry_action(_surgical(targets, no_embed=no_embed), wait_ms(retry_after_ms)))
    permanent = {(f.kind, f.iid) for f in failures if not f.retryable}
    if not permanent:
        actions.append(action("retryRun", "Retry the same targets", _surgical(targets, no_embed=no_embed)))
        return actions
    issues = [iid for iid in targets.issues if ("issue", iid) not in permanent]
    mrs = [iid for iid in targets.mrs if ("mr", iid) not in permanent]
    if issues or mrs:
        title = (f"Sync the {len(issues) + len(mrs)} other targets, leaving out the {len(permanent)} "
                 "that cannot be fetched")
        rest = _surgical(targets, issues=issues, mrs=mrs, no_embed=no_embed)
        actions.append(action("retryRun", title, rest))
    return actions


def partial_actions(
    targets: Targets, failures: list[EntityFailure], *, retry_after_ms: int | None
) -> list[RecoveryAction]:
    """Primaries were written; only the entities with a failed dependent stage need another pass,
    and documents whose embedding failed a standard sync (it backfills them)."""
    actions: list[RecoveryAction] = []
    params = _failed_entities(targets.project, failures)
    if params is not None:
        retry = retry_failed_entities_action(targets.project, failures)
        assert retry is not None  # the same failures gave params
        if retry_after_ms is not None:
            actions.append(wait_and_retry_action(params, retry_after_ms))
        actions.append(retry)
    embedding = retry_embedding_action([targets.project], failures)
    if embedding is not None:
        actions.append(embedding)
    return actions


def error_actions(
    targets: Targets, error: protocol.RobotError, *, token_env: str, retry_after_ms: int | None,
    no_embed: bool,
) -> list[RecoveryAction]:
    """Actions for a run stopped by one error (project resolution, lock timeout, database, ...)."""
    same = _surgical(targets, no_embed=no_embed)
    if error.code in AUTH_CODES:
        return [fix_token_action(token_env), action("retryRun", "Retry after fixing", same)]
    if error.code == "LOCK_TIMEOUT":
        return [wait_and_retry_action(same, wait_ms(retry_after_ms))]
    if error.retryable:
        retry = action("retryRun", "Retry the same targets", same)
        return [retry] if retry_after_ms is None else [wait_and_retry_action(same, retry_after_ms), retry]
    if error.code in ("GITLAB_NOT_FOUND", "GITLAB_REQUEST_FAILED"):
        title = f"Check that project {targets.project} exists and the token can read it"
        return [action("checkTarget", title, _preflight(targets))]
    return []


def preflight_actions(
    targets: Targets, failures: list[EntityFailure], *, auth_ok: bool, token_env: str,
    retry_after_ms: int | None,
) -> list[RecoveryAction]:
    """For ``lore/preflight``: fix the token, check what is missing, re-check after a transient."""
    actions: list[RecoveryAction] = []
    if not auth_ok or any(f.code in AUTH_CODES for f in failures):
        actions.append(fix_token_action(token_env))
    actions.extend(_check_targets(targets.project, failures))
    if any(f.retryable for f in failures):
        actions.append(wait_and_retry_action(_preflight(targets), wait_ms(retry_after_ms)))
    return actions


# ------------------------------------------------------------------------------- standard runs


def _standard_again(params: protocol.SyncParams) -> RecoveryAction:
    return action("retryRun", "Run the standard sync again", params)


def standard_failed_actions(
    params: protocol.SyncParams, exc: BaseException, token_env: str
) -> list[RecoveryAction]:
    """A standard run that failed: the same request again (after fixing the token or waiting)."""
    if isinstance(exc, LoreError) and exc.code in AUTH_CODES:
        return [fix_token_action(token_env), _standard_again(params)]
    if isinstance(exc, LoreError) and exc.retryable:
        return [wait_and_retry_action(params, wait_ms(exc.retry_after_ms))]
    return [_standard_again(params)]


def standard_partial_actions(
    params: protocol.SyncParams, project: str | None, failures: list[EntityFailure]
) -> list[RecoveryAction]:
    """A partial standard run: the failed entities surgically (one project), or the whole again."""
    retry = retry_failed_entities_action(project, failures) if project is not None else None
    return [*([retry] if retry is not None else []), _standard_again(params)]


# --------------------------------------------------------------------- errors a request answers


def _check_request_targets(exc: LoreError, params: msgspec.Struct | None) -> RecoveryAction | None:
    kind, iid = exc.details.get("kind"), exc.details.get("iid")
    project = params.project if isinstance(params, protocol.TargetParams) else None
    if kind in ("issue", "mr") and isinstance(iid, int) and iid >= 1:
        return check_target_action(kind, iid, exc.details.get("project") or project)
    if isinstance(params, protocol.TargetParams):
        p = params
        targets = protocol.PreflightParams(
            project=p.project, issues=p.issues, mrs=p.mrs, issue_urls=p.issue_urls, mr_urls=p.mr_urls,
            refs=p.refs,
        )
        return action("checkTarget", "Check the targets with a preflight (no writes)", targets)
    return None


def _for_error(
    kind: str, exc: LoreError, method: str, params: msgspec.Struct | None
) -> RecoveryAction | None:
    if kind == "fixConfig":
        return fix_config_action(exc.details.get("file"), exc.details.get("key"))
    if kind == "fixToken":
        return fix_token_action(str(exc.details.get("env") or "GITLAB_TOKEN"))
    if kind == "checkTarget":
        return _check_request_targets(exc, params)
    if kind == "syncTarget":
        return sync_target_action(params) if isinstance(params, protocol_read.GetParams) else None
    if params is None:
        return None
    if kind == "waitAndRetry":
        return wait_and_retry_action(params, wait_ms(exc.retry_after_ms), method=method)
    if kind == "retryRun":
        return action("retryRun", "Send the same request again", params, method=method)
    return None  # retryFailedEntities / inspectRun need a run: the run's result carries those


def actions_for_error(exc: LoreError, method: str, params: msgspec.Struct | None) -> list[RecoveryAction]:
    """For a request answered with an error (no run): the actions ``errors.CODES`` lists for the
    code, built for this call (``method`` with ``params``) where possible."""
    actions: list[RecoveryAction] = []
    for kind in CODES[exc.code].actions:
        try:
            built = _for_error(kind, exc, method, params)
        except LoreError as problem:  # e.g. an unusable token_env name: skip that action only
            log.debug("no %s action for %s: %s", kind, exc.code, problem)
            continue
        if built is not None:
            actions.append(built)
    return actions
