"""Recovery actions are executable as they are: params validate as the method's params, and the
shell command is the same request in bridge syntax."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import msgspec
import pytest

from lore_daemon import protocol, recovery
from lore_daemon.errors import ConfigError
from lore_daemon.protocol import EntityFailure, RequestedTargets, RpcRequest, SyncRun

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _run(**kw: object) -> SyncRun:
    base: dict[str, object] = {
        "run_id": "r1", "mode": "surgical", "phase": "failed", "status": "failed",
        "started_at": STARTED, "project": "group/sub proj",
    }
    base.update(kw)
    return SyncRun(**base)  # type: ignore[arg-type]


def _failure(kind: str, iid: int, stage: str = "fetch") -> EntityFailure:
    return EntityFailure(kind=kind, iid=iid, stage=stage, code="GITLAB_NOT_FOUND", message="404")  # type: ignore[arg-type]


def test_retry_surgical_run_repeats_every_target() -> None:
    requested = RequestedTargets(
        issues=[3, 9], mrs=[7],
        issue_urls=["https://gitlab.example.com/group/sub%20proj/-/issues/11"],
        refs=["!12", "group/sub proj#13"],
    )
    action = recovery.retry_run_action(_run(requested=requested))
    assert action.kind == "retryRun" and action.request is not None
    assert action.request.method == "lore/syncSurgical"
    params = msgspec.convert(action.request.params, protocol.SyncSurgicalParams)
    assert params.project == "group/sub proj"
    assert (params.issues, params.mrs, params.issue_urls, params.refs) == (
        [3, 9], [7], requested.issue_urls, ["!12", "group/sub proj#13"]
    )
    assert not params.no_embed and not params.dry_run
    assert shlex.split(action.command or "") == [
        "lore", "sync", "-p", "group/sub proj", "--issue", "3", "--issue", "9", "--mr", "7",
        "--issue-url", requested.issue_urls[0], "--ref", "!12", "--ref", "group/sub proj#13",
    ]


def test_retry_keeps_no_embed_recorded_in_the_summary() -> None:
    action = recovery.retry_run_action(
        _run(requested=RequestedTargets(issues=[1]), surgical_summary={"noEmbed": True})
    )
    assert action.request is not None and action.request.params["noEmbed"] is True
    assert msgspec.convert(action.request.params, protocol.SyncSurgicalParams).no_embed
    assert shlex.split(action.command or "")[-1] == "--no-embed"


def test_retry_standard_run() -> None:
    action = recovery.retry_run_action(
        _run(mode="standard", project=None, requested=RequestedTargets(projects=["g/a", "g/b"]))
    )
    assert action.request is not None and action.request.method == "lore/sync"
    assert msgspec.convert(action.request.params, protocol.SyncParams).projects == ["g/a", "g/b"]
    assert shlex.split(action.command or "") == ["lore", "sync", "-p", "g/a", "-p", "g/b"]

    everything = recovery.retry_run_action(_run(mode="standard", project=None))
    assert everything.request is not None and everything.request.params == {}
    assert everything.command == "lore sync"


def test_retry_failed_entities_contains_only_failed_targets() -> None:
    failures = [_failure("issue", 3), _failure("mr", 7, "diffs"), _failure("issue", 3, "events"),
                _failure("issue", 5)]
    action = recovery.retry_failed_entities_action("group/proj", failures)
    assert action is not None and action.kind == "retryFailedEntities" and action.request is not None
    assert action.request.params == {"project": "group/proj", "issues": [3, 5], "mrs": [7]}
    params = msgspec.convert(action.request.params, protocol.SyncSurgicalParams)
    assert (params.issues, params.mrs) == ([3, 5], [7])
    assert action.command == "lore sync -p group/proj --issue 3 --issue 5 --mr 7"
    assert recovery.retry_failed_entities_action("group/proj", []) is None


def test_check_target_is_a_zero_write_preflight() -> None:
    action = recovery.check_target_action("mr", 34, "g/p")
    assert action.kind == "checkTarget" and action.request is not None
    assert action.request.method == "lore/preflight"
    params = msgspec.convert(action.request.params, protocol.PreflightParams)
    assert (params.project, params.issues, params.mrs) == ("g/p", [], [34])
    assert shlex.split(action.command or "") == [
        "lore", "sync", "-p", "g/p", "--mr", "34", "--preflight-only"
    ]


def test_inspect_run_and_wait_and_retry() -> None:
    inspect = recovery.inspect_run_action("abc123")
    assert inspect.request is not None and inspect.request.method == "lore/syncRuns"
    assert msgspec.convert(inspect.request.params, protocol.SyncRunsParams).run_id == "abc123"
    assert shlex.split(inspect.command or "") == ["lore", "sync-runs", "--run-id", "abc123"]

    request = RpcRequest(method="lore/syncSurgical", params={"project": "g/p", "issues": [1]})
    wait = recovery.wait_and_retry_action(protocol.SyncSurgicalParams(project="g/p", issues=[1]), 1500)
    assert (wait.kind, wait.after_ms, wait.request, wait.command) == (
        "waitAndRetry", 1500, request, "lore sync -p g/p --issue 1"
    )


def test_fix_token_names_the_variable_never_a_value() -> None:
    action = recovery.fix_token_action("MY_GITLAB_TOKEN")
    assert action.kind == "fixToken" and action.request is None
    assert action.command is not None and shlex.split(action.command)[0:2] == ["export", "MY_GITLAB_TOKEN=…"]
    assert "MY_GITLAB_TOKEN" in action.title
    with pytest.raises(ConfigError) as err:
        recovery.fix_token_action("X; rm -rf /")
    assert err.value.code == "CONFIG_INVALID"


def test_fix_config_points_at_file_and_key() -> None:
    action = recovery.fix_config_action("/home/u/my config/lore.toml", "sync.stale_lock_ms")
    assert action.kind == "fixConfig" and action.request is None
    assert "sync.stale_lock_ms" in action.title
    assert shlex.split(action.command or "")[1] == "/home/u/my config/lore.toml"
    assert recovery.fix_config_action(None, None).command is None


def test_surgical_command_quotes_every_value() -> None:
    command = recovery.command_for(protocol.SyncSurgicalParams(
        project="g/it's here", issues=[1], dry_run=True, mr_urls=["https://h/g/p/-/merge_requests/2?a=1&b=2"]
    ))
    assert shlex.split(command or "") == [
        "lore", "sync", "-p", "g/it's here", "--issue", "1",
        "--mr-url", "https://h/g/p/-/merge_requests/2?a=1&b=2", "--dry-run",
    ]
    only = recovery.command_for(protocol.PreflightParams(mrs=[4]))
    assert only == "lore sync --mr 4 --preflight-only"


def test_suggested_retry_only_for_runs_that_did_not_succeed() -> None:
    for status in ("running", "succeeded"):
        assert recovery.suggested_retry(_run(status=status)) is None
    partial = _run(status="partial", phase="done", failures=[_failure("issue", 2, "events")],
                   requested=RequestedTargets(issues=[1, 2]))
    action = recovery.suggested_retry(partial)
    assert action is not None and action.kind == "retryFailedEntities"
    assert action.request is not None and action.request.params["issues"] == [2]
    cancelled = recovery.suggested_retry(_run(status="cancelled", requested=RequestedTargets(issues=[1])))
    assert cancelled is not None and cancelled.kind == "retryRun"
