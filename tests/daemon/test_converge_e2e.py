"""The sync converges on GitLab's real behaviour and lets interactive runs go first, through the
protocol: daemon subprocess ↔ simulator on loopback ↔ SQLite file (issue 15, items 2, 3, 5, 8).

GitLab's clock is moved with the simulator's ``advance_clock``, never slept through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import apsw
import pytest

from lore_daemon.sim import SimConfig, SimServer
from tests.support.wait import wait_until_async

from .support import ClientPool, DaemonEnv, LoreTestClient, rpc

PROJECT = "group/project"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=11, issues=40, mrs=12, notes_per_entity=3)) as server:
        yield server


@pytest.fixture
def env(daemon_env: DaemonEnv, sim: SimServer) -> DaemonEnv:
    daemon_env.write_config(base_url=sim.base_url)
    return daemon_env.with_token(sim.token)


def _read(env: DaemonEnv, sql: str, *args: Any) -> Any:
    conn = apsw.Connection(str(env.db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


async def _sync(client: LoreTestClient) -> dict[str, Any]:
    result: dict[str, Any] = await rpc(client, "lore/sync", {"noEmbed": True}, timeout=60)
    assert result["status"] == "succeeded", result["entityFailures"]
    return result


async def test_throttled_comment_and_late_commit_reach_the_mirror(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    client = await clients.start(env)
    control = sim.control
    control.mutate("bump_issue", project=PROJECT, iid=3)
    first = await _sync(client)
    assert first["counters"]["dependentsUnsettled"] == 2  # #3 fetched right after its update

    control.advance_clock(20_000)
    note = control.mutate("add_note", project=PROJECT, kind="issue", iid=3, body="within the minute")
    assert note["touched"] is False  # GitLab's ThrottledTouch: #3 does not show up in a listing
    control.advance_clock(120_000)
    bumped = control.mutate("bump_issue", project=PROJECT, iid=5)
    cursor = _read(env, "SELECT updated_at FROM sync_cursors WHERE resource = 'issues'")
    # #6 commits a change stamped before the cursor (a late Rails commit), inside the rewind.
    now = control.clock()["now_ms"]
    late = control.mutate("late_commit", project=PROJECT, kind="issue", iid=6, lag_ms=now - cursor + 500)
    assert late["late"] is True

    second = await _sync(client)
    assert _read(env, "SELECT count(*) FROM notes WHERE gitlab_id = ?", note["note_id"]) == 1
    assert second["counters"]["dependentsUnsettled"] == 2  # now #5, just bumped
    # #5, the late #6, and #3 once more: re-listed by the rewind, its payload's user_notes_count
    # moved with the note although its updated_at did not.
    assert second["counters"]["issuesIngested"] == 3
    assert _read(env, "SELECT updated_at FROM issues WHERE iid = 6") < cursor
    assert bumped["updated_at"] > late["updated_at"]


async def test_issues_disabled_syncs_the_mrs_with_a_warning(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    sim.control.set_project_option(PROJECT, "issues_enabled", False)
    client = await clients.start(env)
    result = await _sync(client)
    assert result["error"] is None and result["recoveryActions"] == []
    assert [w for w in result["warnings"] if w.startswith(f"{PROJECT}: issues skipped")]
    assert result["counters"]["mrsIngested"] == 12 and result["counters"]["issuesIngested"] == 0
    assert _read(env, "SELECT count(*) FROM merge_requests") == 12


async def test_a_surgical_request_during_a_standard_sync_answers_first(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    sim.control.set_latency(40)
    client = await clients.start(env)
    standard = asyncio.ensure_future(rpc(client, "lore/sync", {"noEmbed": True}, timeout=120))
    await wait_until_async(
        lambda: any(n["phase"] == "dependents" and n["counters"]["dependentJobsDone"] >= 20
                    for n in client.lore_progress) or standard.done(),
        what="the standard sync to be draining its dependents",
    )
    assert not standard.done()
    surgical = await rpc(client, "lore/syncSurgical", {"project": PROJECT, "issues": [8]}, timeout=30)
    assert surgical["status"] == "succeeded"
    assert not standard.done(), "the surgical request waited for the whole standard sync"
    result = await standard
    assert result["status"] == "succeeded"
    assert (await rpc(client, "lore/status", {}))["locks"] == []


async def test_a_sync_right_after_a_crash_takes_the_dead_daemons_locks_over(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    # lock_timeout_ms is 2 s and stale_lock_ms 5 s here: waiting for staleness would time out.
    sim.control.set_latency(40)
    victim = await clients.start(env)
    pending = asyncio.ensure_future(rpc(victim, "lore/sync", {"noEmbed": True}, timeout=120))
    await wait_until_async(
        lambda: any(n["phase"] == "dependents" for n in victim.lore_progress), what="the victim's dependents"
    )
    assert victim._server is not None
    victim._server.kill()
    await victim._server.wait()
    with pytest.raises(Exception):  # noqa: B017 - the daemon is gone; how the client says so does not matter
        await pending
    sim.control.set_latency(0)

    survivor = await clients.start(env)
    result = await _sync(survivor)
    assert result["counters"]["issuesIngested"] == 0  # the victim had ingested everything
    runs = (await rpc(survivor, "lore/syncRuns", {"limit": 2}))["runs"]
    dead = next(r for r in runs if r["runId"] != result["runId"])
    assert (dead["status"], dead["failedPhase"]) == ("failed", "dependents")
    assert dead["error"]["code"] == "ABANDONED"
    assert dead["error"]["details"]["processGone"] is True
    assert (await rpc(survivor, "lore/status", {}))["locks"] == []
