"""Builders of executable recovery actions (SPEC §9 ``RecoveryAction``).

Every action a client receives must be runnable as it is: ``request`` is the exact JSON-RPC call
(method + params, built from the protocol's own param Structs so they always validate), and
``command`` is the same thing as a ``lore`` bridge shell line (every value shell-quoted). Nothing
here touches the database or the network, so the ledger, the services and the error mapping can
all build actions without import cycles.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from lore_daemon import protocol
from lore_daemon.errors import ConfigError
from lore_daemon.protocol import EntityFailure, EntityKind, RecoveryAction, RpcRequest, SyncRun

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@functools.cache
def _wire_fields(struct_type: type[msgspec.Struct]) -> tuple[tuple[str, str, Any], ...]:
    """(attribute, wire name, default) per field; cached because ``lore/syncRuns`` calls
    ``_params`` for every listed run and reflecting on the type each time dominated its latency."""
    return tuple(
        (
            f.name,
            f.encode_name,
            f.default if f.default is not msgspec.NODEFAULT else f.default_factory(),
        )
        for f in msgspec.structs.fields(struct_type)
    )


def _params(params: msgspec.Struct) -> dict[str, Any]:
    """Wire form of a params Struct: camelCase keys, defaults left out (what a client would send)."""
    built: dict[str, Any] = {}
    for name, wire_name, default in _wire_fields(type(params)):
        value = getattr(params, name)
        if value != default:
            built[wire_name] = msgspec.to_builtins(value)
    return built


def _unique(values: Iterable[int]) -> list[int]:
    """Deduplicate, keeping first-seen order (the order the caller named the targets in)."""
    return list(dict.fromkeys(values))


def surgical_command(
    project: str | None,
    issues: Sequence[int],
    mrs: Sequence[int],
    *,
    dry_run: bool = False,
    preflight_only: bool = False,
    no_embed: bool = False,
    issue_urls: Sequence[str] = (),
    mr_urls: Sequence[str] = (),
    refs: Sequence[str] = (),
) -> str:
    """The ``lore sync …`` line for a surgical request; repeatable flags, one per value."""
    words = ["lore", "sync"]
    if project is not None:
        words += ["-p", project]
    for iid in issues:
        words += ["--issue", str(iid)]
    for iid in mrs:
        words += ["--mr", str(iid)]
    for url in issue_urls:
        words += ["--issue-url", url]
    for url in mr_urls:
        words += ["--mr-url", url]
    for ref in refs:
        words += ["--ref", ref]
    if dry_run:
        words.append("--dry-run")
    if preflight_only:
        words.append("--preflight-only")
    if no_embed:
        words.append("--no-embed")
    return shlex.join(words)


def standard_command(projects: Sequence[str] = (), *, no_embed: bool = False, reembed: bool = False) -> str:
    """The ``lore sync`` line of a standard sync; ``-p`` without targets restricts its projects."""
    words = ["lore", "sync"]
    for project in projects:
        words += ["-p", project]
    if no_embed:
        words.append("--no-embed")
    if reembed:
        words.append("--reembed")
    return shlex.join(words)


def _wants_no_embed(run: SyncRun) -> bool:
    """Runs started with ``noEmbed`` record it in their surgical summary; a retry keeps it."""
    return bool(run.surgical_summary and run.surgical_summary.get("noEmbed") is True)


def retry_run_action(run: SyncRun) -> RecoveryAction:
    """Send the run's original request again (same targets, same project, same mode)."""
    no_embed = _wants_no_embed(run)
    req = run.requested
    if run.mode == "surgical":
        params = protocol.SyncSurgicalParams(
            project=run.project,
            issues=list(req.issues),
            mrs=list(req.mrs),
            issue_urls=list(req.issue_urls),
            mr_urls=list(req.mr_urls),
            refs=list(req.refs),
            no_embed=no_embed,
        )
        command = surgical_command(
            run.project, req.issues, req.mrs, no_embed=no_embed,
            issue_urls=req.issue_urls, mr_urls=req.mr_urls, refs=req.refs,
        )
        return RecoveryAction(
            kind="retryRun",
            title=f"Retry surgical run {run.run_id} with the same targets",
            request=RpcRequest(method="lore/syncSurgical", params=_params(params)),
            command=command,
        )
    projects = list(req.projects) or ([run.project] if run.project else [])
    standard = protocol.SyncParams(projects=projects or None, no_embed=no_embed)
    return RecoveryAction(
        kind="retryRun",
        title=f"Retry standard sync run {run.run_id}",
        request=RpcRequest(method="lore/sync", params=_params(standard)),
        command=standard_command(projects, no_embed=no_embed),
    )


def retry_failed_entities_action(project: str, failures: list[EntityFailure]) -> RecoveryAction | None:
    """Surgically re-sync only the entities that failed; None when nothing failed. Embedding
    failures are left out: a re-sync of unchanged entities regenerates (and embeds) nothing, so
    ``retry_embedding_action`` covers them."""
    failures = [f for f in failures if f.stage != "embed"]
    issues = _unique(f.iid for f in failures if f.kind == "issue")
    mrs = _unique(f.iid for f in failures if f.kind == "mr")
    if not issues and not mrs:
        return None
    params = protocol.SyncSurgicalParams(project=project, issues=issues, mrs=mrs)
    count = len(issues) + len(mrs)
    return RecoveryAction(
        kind="retryFailedEntities",
        title=f"Retry the {count} failed {'entity' if count == 1 else 'entities'} in {project}",
        request=RpcRequest(method="lore/syncSurgical", params=_params(params)),
        command=surgical_command(project, issues, mrs),
    )


def retry_embedding_action(projects: Sequence[str], failures: list[EntityFailure]) -> RecoveryAction | None:
    """A standard sync of the projects: its embed phase backfills every document still without a
    current vector. None when no embedding failed."""
    count = len({(f.kind, f.iid) for f in failures if f.stage == "embed"})
    if not count:
        return None
    params = protocol.SyncParams(projects=list(projects) or None)
    return RecoveryAction(
        kind="retryEmbedding",
        title=f"Embed the documents of the {count} {'entity' if count == 1 else 'entities'} whose "
        "embedding failed (a standard sync backfills every document without a current vector)",
        request=RpcRequest(method="lore/sync", params=_params(params)),
        command=standard_command(projects),
    )


def wait_and_retry_action(request: RpcRequest, command: str, after_ms: int) -> RecoveryAction:
    """Send the same request again after ``after_ms`` (rate limits, lock contention, outages)."""
    return RecoveryAction(
        kind="waitAndRetry",
        title=f"Wait {after_ms / 1000:.1f} s, then retry",
        request=request,
        command=command,
        after_ms=max(0, after_ms),
    )


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
    issues = [iid] if kind == "issue" else []
    mrs = [iid] if kind == "mr" else []
    params = protocol.PreflightParams(project=project, issues=issues, mrs=mrs)
    label = f"#{iid}" if kind == "issue" else f"!{iid}"
    where = f" in {project}" if project else ""
    return RecoveryAction(
        kind="checkTarget",
        title=f"Check that {label}{where} exists and the token can read it",
        request=RpcRequest(method="lore/preflight", params=_params(params)),
        command=surgical_command(project, issues, mrs, preflight_only=True),
    )


def inspect_run_action(run_id: str) -> RecoveryAction:
    """Read one run's ledger row (phase, counters, failures, its own suggested retry)."""
    params = protocol.SyncRunsParams(run_id=run_id)
    return RecoveryAction(
        kind="inspectRun",
        title=f"Inspect run {run_id}",
        request=RpcRequest(method="lore/syncRuns", params=_params(params)),
        command=shlex.join(["lore", "sync-runs", "--run-id", run_id]),
    )


def suggested_retry(run: SyncRun) -> RecoveryAction | None:
    """The one action ``lore/syncRuns`` suggests for a finished run that did not fully succeed.

    A ``partial`` surgical run wrote its primaries; only the entities with failures need another
    pass. A ``failed`` run wrote nothing (primary atomicity) or died, and a ``cancelled`` one
    stopped early, so those retry the whole request.
    """
    if run.status not in ("failed", "partial", "cancelled"):
        return None
    if run.status == "partial" and run.mode == "surgical" and run.project is not None:
        action = retry_failed_entities_action(run.project, run.failures)
        if action is None:
            action = retry_embedding_action([run.project], run.failures)
        if action is not None:
            return action
    return retry_run_action(run)
