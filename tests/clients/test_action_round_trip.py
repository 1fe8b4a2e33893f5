"""Every recovery action round-trips through the real ``lore`` argument parser: the action's shell
``command``, parsed by ``lore_client.bridge.build_parser`` and turned into a call by the bridge's
own ``request_for``, gives exactly the method and params of the action's ``request``."""

from __future__ import annotations

import shlex
import typing
from datetime import UTC, datetime

import msgspec
import pytest

from lore_client.bridge import build_parser, request_for
from lore_daemon import protocol, protocol_read, recovery
from lore_daemon.errors import LoreError
from lore_daemon.gitlab.targets import ResolvedTargets
from lore_daemon.protocol import EntityFailure, RecoveryAction, RequestedTargets, SyncRun

PROJECT = "group/it's a project"  # quotes and spaces: the command must shell-quote them
URL = "https://gitlab.example.com/group/p/-/merge_requests/2?a=1&b=2"
TARGETS = ResolvedTargets(project=PROJECT, issues=(3, 9), mrs=(7,))
PARAMS_TYPES = {
    "lore/preflight": protocol.PreflightParams, "lore/syncSurgical": protocol.SyncSurgicalParams,
    "lore/sync": protocol.SyncParams, "lore/syncRuns": protocol.SyncRunsParams,
    "lore/status": protocol.StatusParams, "lore/robotDocs": protocol.RobotDocsParams,
    "lore/get": protocol_read.GetParams, "lore/list": protocol_read.ListParams,
    "lore/search": protocol_read.SearchParams,
}
# Methods the bridge cannot spell yet: their actions carry the request and no command.
UNSPELLED = frozenset({"lore/get", "lore/list", "lore/search"})


def _run(**fields: typing.Any) -> SyncRun:
    base: dict[str, typing.Any] = {
        "run_id": "r1", "mode": "surgical", "phase": "failed", "status": "failed",
        "started_at": datetime(2026, 1, 2, tzinfo=UTC), "project": PROJECT,
    }
    return SyncRun(**{**base, **fields})


def _failure(kind: protocol.EntityKind, iid: int, *, retryable: bool = False) -> EntityFailure:
    code = "GITLAB_UNAVAILABLE" if retryable else "GITLAB_NOT_FOUND"
    return EntityFailure(kind=kind, iid=iid, stage="fetch", code=code, message="x", retryable=retryable)


def _embed_failure(kind: protocol.EntityKind, iid: int) -> EntityFailure:
    return EntityFailure(kind=kind, iid=iid, stage="embed", code="EMBEDDING_UNAVAILABLE", message="x",
                         retryable=True)


def _error(code: str, **details: typing.Any) -> LoreError:
    return LoreError("failed", code, "retry", details=details, retry_after_ms=1500)


def every_action() -> list[RecoveryAction]:
    """Actions of every kind, from every builder, with awkward values."""
    failures = [_failure("issue", 3), _failure("mr", 7, retryable=True)]
    surgical_call = protocol.SyncSurgicalParams(
        project=PROJECT, issues=[1], mr_urls=[URL], refs=["#4", "g/p!5"], dry_run=True, no_embed=True,
        work_done_token="tok",
    )
    actions = [
        recovery.retry_run_action(_run(
            requested=RequestedTargets(issues=[3], mrs=[7], issue_urls=[URL], refs=["!12"]),
            surgical_summary={"noEmbed": True},
        )),
        recovery.retry_run_action(_run(mode="standard", project=None,
                                       requested=RequestedTargets(projects=["g/a", "g b/c"]))),
        recovery.retry_run_action(_run(mode="standard", project=None)),
        recovery.inspect_run_action("abc123"),
        recovery.fix_config_action("/home/u/my config.toml", "sync.stale_lock_ms"),
        *recovery.preflight_failed_actions(
            TARGETS, failures, token_env="T", retry_after_ms=None, no_embed=True
        ),
        *recovery.partial_actions(TARGETS, failures, retry_after_ms=2000),
        *recovery.partial_actions(TARGETS, [*failures, _embed_failure("mr", 7)], retry_after_ms=None),
        recovery.suggested_retry(_run(status="partial", failures=[_embed_failure("issue", 3)])),
        *recovery.error_actions(TARGETS, protocol.RobotError(
            code="GITLAB_AUTH_FAILED", message="m", suggestion="s", retryable=False,
        ), token_env="T", retry_after_ms=None, no_embed=False),
        *recovery.error_actions(TARGETS, protocol.RobotError(
            code="GITLAB_NOT_FOUND", message="m", suggestion="s", retryable=False,
        ), token_env="T", retry_after_ms=None, no_embed=False),
        *recovery.preflight_actions(TARGETS, failures, auth_ok=False, token_env="T", retry_after_ms=10),
        *recovery.standard_failed_actions(protocol.SyncParams(projects=["g/a"], no_embed=True),
                                          _error("GITLAB_RATE_LIMITED"), "T"),
        *recovery.standard_partial_actions(protocol.SyncParams(), PROJECT, failures),
        *recovery.standard_failed_actions(protocol.SyncParams(projects=["g/a"], reembed=True),
                                          _error("DB_ERROR"), "T"),
        *recovery.actions_for_error(_error("GITLAB_UNAVAILABLE"), "lore/syncSurgical", surgical_call),
        *recovery.actions_for_error(_error("INVALID_TARGET"), "lore/syncSurgical", surgical_call),
        *recovery.actions_for_error(_error("DB_ERROR"), "lore/syncRuns",
                                    protocol.SyncRunsParams(limit=5, status="failed")),
        *recovery.actions_for_error(_error("DB_ERROR"), "lore/syncRuns", protocol.SyncRunsParams()),
        *recovery.actions_for_error(_error("DB_ERROR"), "lore/status", protocol.StatusParams()),
        *recovery.actions_for_error(_error("DB_ERROR"), "lore/robotDocs", protocol.RobotDocsParams()),
        *recovery.actions_for_error(
            _error("LOCK_TIMEOUT"), "lore/sync", protocol.SyncParams(projects=["g/a"])
        ),
        *recovery.actions_for_error(
            _error("NOT_IN_MIRROR", kind="issue", iid=12, project=PROJECT), "lore/get",
            protocol_read.GetParams(ref="#12", offline=True, include=["events"], work_done_token=3),
        ),
        *recovery.actions_for_error(
            _error("DB_ERROR"), "lore/search", protocol_read.SearchParams(query="a b", limit=5)
        ),
    ]
    return actions


def test_every_action_kind_is_covered() -> None:
    assert {a.kind for a in every_action()} == set(typing.get_args(protocol.ActionKind))


@pytest.mark.parametrize("action", every_action(), ids=lambda a: f"{a.kind}:{a.command}")
def test_the_command_parses_to_exactly_the_request(action: RecoveryAction) -> None:
    if action.request is None:  # fixToken / fixConfig: something for a person to do, not a call
        assert action.kind in ("fixToken", "fixConfig")
        assert action.command is None or shlex.split(action.command)[0] != "lore"
        return
    if action.request.method in UNSPELLED:
        assert action.command is None
        msgspec.convert(action.request.params, PARAMS_TYPES[action.request.method])
        assert "workDoneToken" not in action.request.params
        return
    assert action.command is not None
    words = shlex.split(action.command)
    assert words[0] == "lore"
    method, params = request_for(build_parser().parse_args(words[1:]))
    assert (method, params) == (action.request.method, action.request.params)
    # ... and the request is valid params of its method (unknown or mistyped fields would raise).
    msgspec.convert(action.request.params, PARAMS_TYPES[method])
    assert "workDoneToken" not in action.request.params


def test_sync_target_reads_again_with_max_age_zero() -> None:
    (sync,) = recovery.actions_for_error(
        _error("NOT_IN_MIRROR"), "lore/get", protocol_read.GetParams(ref="#12", offline=True)
    )
    assert sync.kind == "syncTarget" and sync.request is not None
    assert (sync.request.method, sync.request.params) == ("lore/get", {"ref": "#12", "maxAgeMs": 0})


def test_a_request_the_bridge_cannot_spell_gets_no_command_rather_than_a_wrong_one() -> None:
    nothing = protocol.SyncParams(projects=[])
    (wait,) = recovery.actions_for_error(_error("LOCK_TIMEOUT"), "lore/sync", nothing)
    assert wait.request is not None and wait.request.params == {"projects": []}
    assert wait.command is None  # `lore sync` would sync every configured project instead
