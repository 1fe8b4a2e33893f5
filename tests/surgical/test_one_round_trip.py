"""One issue is one GitLab round trip on a warm daemon (issue 15, item 9): the project's numeric
id is resolved once and kept in the store, and the primary and all its dependents go out together."""

from __future__ import annotations

from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sync.surgical import run_surgical_sync

from .conftest import surgical

LATENCY_MS = 200  # long enough that requests overlapping on the wire show in the simulator's log


async def test_a_known_project_is_not_resolved_again_and_one_issue_is_one_round_trip(
    engine: Engine, sim: SimServer
) -> None:
    first = await run_surgical_sync(engine, surgical(issues=[1]))
    assert first.status == "succeeded"
    assert "/api/v4/projects/group%2Fproject" in [e["path"] for e in sim.control.log()]  # unknown yet

    sim.control.clear_log()
    sim.control.set_latency(LATENCY_MS)
    second = await run_surgical_sync(engine, surgical(issues=[2]))
    assert second.status == "succeeded" and second.entities[0].outcome == "ingested"
    log = sim.control.log()
    issue = "/api/v4/projects/1/issues/2"
    assert sorted(e["path"] for e in log) == sorted([
        issue, f"{issue}/discussions", f"{issue}/resource_state_events",
        f"{issue}/resource_label_events", f"{issue}/resource_milestone_events",
    ])  # no project lookup: its id was kept
    # All five were on the wire at once: each started before any of them was answered.
    assert max(e["started_at"] for e in log) < min(e["finished_at"] for e in log)
    assert second.counters.requests == 5


async def test_an_unknown_project_is_resolved_first(engine: Engine, sim: SimServer) -> None:
    result = await run_surgical_sync(engine, surgical(project="group/sub/other", issues=[1]))
    assert result.status == "succeeded"
    paths = [e["path"] for e in sim.control.log()]
    assert paths[0] == "/api/v4/projects/group%2Fsub%2Fother"  # before anything of the project's
    assert all(p.startswith("/api/v4/projects/2/") for p in paths[1:])  # then by its numeric id
