"""Every target-validation error is raised before any network call and before any write
(docs/surgical-sync.md, invariant T)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.errors import TargetError
from lore_daemon.sim import SimServer
from lore_daemon.sync.surgical import run_preflight, run_surgical_sync

from .conftest import build_engine, rows


def _cases(base: str) -> list[tuple[str, dict[str, Any], str]]:
    port = int(base.rsplit(":", 1)[1])
    return [
        (
            "mr-url-as-issue-url",
            {"issue_urls": [f"{base}/group/project/-/merge_requests/3"]},
            "INVALID_TARGET",
        ),
        ("issue-url-as-mr-url", {"mr_urls": [f"{base}/group/project/-/issues/3"]}, "INVALID_TARGET"),
        ("zero-iid", {"project": "group/project", "issues": [0]}, "INVALID_TARGET"),
        ("negative-iid", {"project": "group/project", "mrs": [-4]}, "INVALID_TARGET"),
        ("unparsable-ref", {"project": "group/project", "refs": ["issue twelve"]}, "INVALID_TARGET"),
        ("ref-without-iid", {"project": "group/project", "refs": ["group/project#"]}, "INVALID_TARGET"),
        ("not-an-entity-url", {"issue_urls": [f"{base}/group/project/-/pipelines/3"]}, "INVALID_TARGET"),
        ("mixed-projects", {"refs": ["group/project#1", "group/sub/other!2"]}, "MIXED_PROJECTS"),
        (
            "mixed-project-param",
            {"project": "group/sub/other", "refs": ["group/project#1"]},
            "MIXED_PROJECTS",
        ),
        (
            "other-host",
            {"issue_urls": ["https://gitlab.evil.example/group/project/-/issues/1"]},
            "TARGET_HOST_MISMATCH",
        ),
        (
            "other-port",
            {"issue_urls": [f"http://127.0.0.1:{port + 1}/group/project/-/issues/1"]},
            "TARGET_HOST_MISMATCH",
        ),
        (
            "other-scheme",
            {"refs": [f"https://127.0.0.1:{port}/group/project/-/issues/1"]},
            "TARGET_HOST_MISMATCH",
        ),
        (
            "too-many",
            {"project": "group/project", "issues": list(range(1, 60)), "mrs": list(range(1, 43))},
            "TOO_MANY_TARGETS",
        ),
        ("no-targets", {"project": "group/project"}, "NO_TARGETS"),
    ]


CASE_IDS = [case[0] for case in _cases("http://127.0.0.1:1")]


async def _assert_rejected_offline(engine: Engine, sim: SimServer, fields: dict[str, Any], code: str) -> None:
    sim.control.clear_log()
    calls = (
        lambda: run_preflight(engine, protocol.PreflightParams(**fields)),
        lambda: run_surgical_sync(engine, protocol.SyncSurgicalParams(**fields)),
        lambda: run_surgical_sync(engine, protocol.SyncSurgicalParams(dry_run=True, **fields)),
    )
    for call in calls:
        with pytest.raises(TargetError) as raised:
            await call()
        assert raised.value.code == code
    assert sim.control.log() == [], "a rejected target must never reach the network"
    assert rows(engine.db.path, "sync_runs") == [], "a rejected request must not start a run"


@pytest.mark.parametrize("case", CASE_IDS)
async def test_target_validation_errors_make_no_network_call(
    engine: Engine, sim: SimServer, case: str
) -> None:
    _, fields, code = next(c for c in _cases(sim.base_url) if c[0] == case)
    await _assert_rejected_offline(engine, sim, fields, code)


@pytest.mark.parametrize("projects", [(), ("group/project", "group/sub/other")], ids=["none", "two"])
async def test_project_required_when_it_cannot_be_inferred(
    tmp_path: Path, sim: SimServer, projects: tuple[str, ...]
) -> None:
    engine = build_engine(tmp_path, sim, projects=projects)
    try:
        await _assert_rejected_offline(engine, sim, {"issues": [1], "refs": ["!2"]}, "PROJECT_REQUIRED")
    finally:
        await engine.aclose()


async def test_duplicates_are_merged_and_count_once_toward_the_limit(engine: Engine, sim: SimServer) -> None:
    base = sim.base_url
    params = protocol.SyncSurgicalParams(
        issues=[1, 2, 1],
        issue_urls=[f"{base}/group/project/-/issues/2", f"{base}/group/project/-/work_items/3"],
        refs=["#1", "group/project!2", "!2"],
        mrs=[2],
        dry_run=True,
    )
    result = await run_surgical_sync(engine, params)
    assert [(e.kind, e.iid) for e in result.entities] == [("issue", 1), ("issue", 2), ("issue", 3), ("mr", 2)]
    exactly_100 = protocol.SyncSurgicalParams(
        project="group/project", issues=[*range(1, 61), *range(1, 61)], mrs=list(range(1, 41)), dry_run=True
    )
    assert len((await run_surgical_sync(engine, exactly_100)).entities) == 100
