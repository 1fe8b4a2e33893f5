"""Surgical and standard sync together: nothing is lost, whatever the interleaving."""

from __future__ import annotations

import asyncio

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.sync.surgical import run_surgical_sync

from .conftest import PROJECT, rows, surgical
from .truth import differences, mirror_of, truth_of


async def test_concurrent_standard_and_surgical_sync_lose_nothing(engine: Engine, sim: SimServer) -> None:
    first = await run_standard_sync(engine, protocol.SyncParams())
    assert first.status == "succeeded"
    # GitLab moves on: both runs below have real changes to write, some of them on the same entities.
    control = sim.control
    control.mutate("bump_issue", project=PROJECT, iid=3)
    control.mutate("add_note", project=PROJECT, kind="issue", iid=4, body="new finding")
    control.mutate("add_label", project=PROJECT, kind="mr", iid=2, label="needs-review")
    control.mutate("close_issue", project=PROJECT, iid=5)
    control.mutate("add_note", project=PROJECT, kind="mr", iid=1, body="LGTM")
    control.mutate("add_note", project=PROJECT, kind="issue", iid=20, body="only the standard sync sees this")
    control.set_latency(3)  # spread both runs over time so their phases interleave

    standard, surgical_result = await asyncio.gather(
        run_standard_sync(engine, protocol.SyncParams()),
        run_surgical_sync(engine, surgical(issues=[3, 4, 5, 6], mrs=[1, 2])),
    )
    assert standard.status == "succeeded" and surgical_result.status == "succeeded"
    assert differences(truth_of(sim, PROJECT), mirror_of(engine.db.path, 1)) == []
    assert rows(engine.db.path, "pending_dependent_fetches") == []
    assert rows(engine.db.path, "app_locks") == []


async def test_dependents_older_than_the_new_version_are_refetched_by_standard_sync(
    engine: Engine, sim: SimServer
) -> None:
    # The race surgical sync accepts for speed: its dependent fetches run beside the primary fetch.
    # Here a note lands after #7's discussions were served but before #7 itself is: the run stores
    # the new version with the older discussions. It must not claim they match that version...
    sim.control.set_latency(400, route=r"/issues/7$")
    events = r"/issues/7/resource_label_events$"
    sim.control.add_fault(events, statuses=[502], times=1, latency_ms=50)  # its retry comes later...
    sim.control.add_fault(  # ...and brings the note, well after #7's discussions were served
        events,
        statuses=[200],
        times=1,
        mutation={"op": "add_note", "project": PROJECT, "kind": "issue", "iid": 7, "body": "raced"},
    )
    result = await run_surgical_sync(engine, surgical(issues=[7]))
    assert result.status == "succeeded" and result.entities[0].outcome == "ingested"
    issue_7 = ("issue", 7)
    truth, mirror = truth_of(sim, PROJECT)[issue_7], mirror_of(engine.db.path, 1)[issue_7]
    assert mirror["row"] == truth["row"], "the new version of #7 was stored"
    assert len(mirror["notes"]) == len(truth["notes"]) - 1, "its discussions predate that version"
    # ...so the next standard sync refetches them and the mirror converges on the truth.
    standard = await run_standard_sync(engine, protocol.SyncParams())
    assert standard.status == "succeeded"
    assert differences(truth_of(sim, PROJECT), mirror_of(engine.db.path, 1)) == []
