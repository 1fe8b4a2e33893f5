"""Recovery actions of a surgical run: what a client (or agent) can execute as it is.

Built only from the resolved targets and the run's failures, never from prose. Retries use the
resolved form of the request (``project`` + IID lists): it is equivalent to the URLs and references
the caller gave, and stays valid when executed verbatim.
"""

from __future__ import annotations

from typing import Any

import msgspec

from lore_daemon import protocol
from lore_daemon.gitlab.targets import ResolvedTargets
from lore_daemon.sync import recovery
from lore_daemon.sync.preflight import Target

MAX_CHECK_TARGET_ACTIONS = 10
DEFAULT_RETRY_AFTER_MS = 5_000  # for 5xx/timeouts: GitLab gave no hint, wait a little
_AUTH_CODES = frozenset({"GITLAB_AUTH_FAILED", "GITLAB_FORBIDDEN"})


def wire_params(params: msgspec.Struct) -> dict[str, Any]:
    """Params as a client sends them: camelCase, unset options (None, [], False) left out."""
    built: dict[str, Any] = msgspec.to_builtins(params)
    return {key: value for key, value in built.items() if value not in (None, [], False)}


def surgical_request(
    project: str, issues: list[int], mrs: list[int], *, no_embed: bool = False
) -> tuple[protocol.RpcRequest, str]:
    """The JSON-RPC request and the ``lore`` shell line of a surgical sync of these targets."""
    params = protocol.SyncSurgicalParams(project=project, issues=issues, mrs=mrs, no_embed=no_embed)
    request = protocol.RpcRequest(method="lore/syncSurgical", params=wire_params(params))
    return request, recovery.surgical_command(project, issues, mrs, no_embed=no_embed)


def _retry_whole(targets: ResolvedTargets, no_embed: bool, title: str) -> protocol.RecoveryAction:
    request, command = surgical_request(
        targets.project, list(targets.issues), list(targets.mrs), no_embed=no_embed
    )
    return protocol.RecoveryAction(kind="retryRun", title=title, request=request, command=command)


def _wait_and_retry(targets: ResolvedTargets, no_embed: bool, after_ms: int) -> protocol.RecoveryAction:
    request, command = surgical_request(
        targets.project, list(targets.issues), list(targets.mrs), no_embed=no_embed
    )
    return recovery.wait_and_retry_action(request, command, after_ms)


def _check_targets(project: str, failures: list[protocol.EntityFailure]) -> list[protocol.RecoveryAction]:
    seen: dict[Target, None] = {}
    for failure in failures:
        if not failure.retryable:
            seen.setdefault((failure.kind, failure.iid), None)
    return [
        recovery.check_target_action(kind, iid, project)
        for kind, iid in list(seen)[:MAX_CHECK_TARGET_ACTIONS]
    ]


def preflight_failed_actions(
    targets: ResolvedTargets,
    failures: list[protocol.EntityFailure],
    *,
    token_env: str,
    retry_after_ms: int | None,
    no_embed: bool,
) -> list[protocol.RecoveryAction]:
    """Nothing was written: fix what is permanent, wait out what is transient, then send it again.

    When some targets are permanently unfetchable (e.g. deleted), a ``retryRun`` without them lets
    the rest sync now.
    """
    actions: list[protocol.RecoveryAction] = []
    if any(f.code in _AUTH_CODES for f in failures):
        actions.append(recovery.fix_token_action(token_env))
    actions.extend(_check_targets(targets.project, failures))
    if any(f.retryable for f in failures):
        actions.append(_wait_and_retry(targets, no_embed, retry_after_ms or DEFAULT_RETRY_AFTER_MS))
    permanent = {(f.kind, f.iid) for f in failures if not f.retryable}
    if permanent:
        issues = [iid for iid in targets.issues if ("issue", iid) not in permanent]
        mrs = [iid for iid in targets.mrs if ("mr", iid) not in permanent]
        if issues or mrs:
            request, command = surgical_request(targets.project, issues, mrs, no_embed=no_embed)
            left_out = len(permanent)
            actions.append(
                protocol.RecoveryAction(
                    kind="retryRun",
                    title=f"Sync the {len(issues) + len(mrs)} other targets, leaving out the {left_out} "
                    "that cannot be fetched",
                    request=request,
                    command=command,
                )
            )
    else:
        actions.append(_retry_whole(targets, no_embed, "Retry the same targets"))
    return actions


def partial_actions(
    targets: ResolvedTargets, failures: list[protocol.EntityFailure], *, retry_after_ms: int | None
) -> list[protocol.RecoveryAction]:
    """Primaries were written; only the entities with a failed dependent stage need another pass."""
    actions: list[protocol.RecoveryAction] = []
    retry = recovery.retry_failed_entities_action(targets.project, failures)
    if retry is not None:
        if retry_after_ms is not None and retry.request is not None:
            actions.append(recovery.wait_and_retry_action(retry.request, retry.command or "", retry_after_ms))
        actions.append(retry)
    embedding = recovery.retry_embedding_action([targets.project], failures)
    if embedding is not None:
        actions.append(embedding)
    return actions


def error_actions(
    targets: ResolvedTargets, error: protocol.RobotError, *, token_env: str, retry_after_ms: int | None,
    no_embed: bool,
) -> list[protocol.RecoveryAction]:
    """Actions for a run stopped by one error (project resolution, lock timeout, database, ...)."""
    if error.code in _AUTH_CODES:
        return [recovery.fix_token_action(token_env), _retry_whole(targets, no_embed, "Retry after fixing")]
    if error.code == "LOCK_TIMEOUT":
        return [_wait_and_retry(targets, no_embed, retry_after_ms or DEFAULT_RETRY_AFTER_MS)]
    if error.retryable:
        actions = [_retry_whole(targets, no_embed, "Retry the same targets")]
        if retry_after_ms is not None:
            actions.insert(0, _wait_and_retry(targets, no_embed, retry_after_ms))
        return actions
    if error.code in ("GITLAB_NOT_FOUND", "GITLAB_REQUEST_FAILED"):
        return [
            protocol.RecoveryAction(
                kind="checkTarget",
                title=f"Check that project {targets.project} exists and the token can read it",
                request=protocol.RpcRequest(
                    method="lore/preflight",
                    params=wire_params(
                        protocol.PreflightParams(
                            project=targets.project, issues=list(targets.issues), mrs=list(targets.mrs)
                        )
                    ),
                ),
                command=recovery.surgical_command(
                    targets.project, targets.issues, targets.mrs, preflight_only=True
                ),
            )
        ]
    return []


def preflight_actions(
    targets: ResolvedTargets,
    failures: list[protocol.EntityFailure],
    *,
    auth_ok: bool,
    token_env: str,
    retry_after_ms: int | None,
) -> list[protocol.RecoveryAction]:
    """For ``lore/preflight``: fix the token, check what is missing, re-check after a transient."""
    actions: list[protocol.RecoveryAction] = []
    if not auth_ok or any(f.code in _AUTH_CODES for f in failures):
        actions.append(recovery.fix_token_action(token_env))
    actions.extend(_check_targets(targets.project, failures))
    if any(f.retryable for f in failures):
        params = protocol.PreflightParams(
            project=targets.project, issues=list(targets.issues), mrs=list(targets.mrs)
        )
        request = protocol.RpcRequest(
            method="lore/preflight", params=wire_params(params)
        )
        command = recovery.surgical_command(
            targets.project, targets.issues, targets.mrs, preflight_only=True
        )
        actions.append(
            recovery.wait_and_retry_action(request, command, retry_after_ms or DEFAULT_RETRY_AFTER_MS)
        )
    return actions
