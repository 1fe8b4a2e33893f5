"""Real GitLab behaviours through the protocol: daemon subprocess ↔ simulator on loopback ↔ SQLite.

A wrong ``base_url`` is named as such (not "GitLab refused the token"); an interactive run under a
rate limit fails fast with ``waitAndRetry``/``afterMs``; keyset pages, external tracker items and
a shared 429 pause do not stop a standard sync (issue 15, items 4, 6, 10, 11).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apsw
import pytest
from pygls.exceptions import JsonRpcException

from lore_daemon.sim import SimConfig, SimServer
from tests.gitlab.support import html_server

from .support import ClientPool, DaemonEnv, LoreTestClient, rpc

PROJECT = "group/project"


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=9, issues=25, mrs=10, notes_per_entity=3)) as server:
        yield server


@pytest.fixture
def env(daemon_env: DaemonEnv, sim: SimServer) -> DaemonEnv:
    daemon_env.write_config(base_url=sim.base_url)
    return daemon_env.with_token(sim.token)


@pytest.fixture
def intranet() -> Iterator[str]:
    with html_server() as url:
        yield url


async def _error(client: LoreTestClient, method: str, params: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as caught:
        await rpc(client, method, params)
    return caught.value


async def test_a_base_url_of_the_api_itself_is_a_config_error(
    clients: ClientPool, daemon_env: DaemonEnv, sim: SimServer
) -> None:
    daemon_env.write_config(base_url=f"{sim.base_url}/api/v4")
    client = await clients.start(daemon_env.with_token(sim.token))
    for method, params in (("lore/sync", {}), ("lore/syncSurgical", {"project": PROJECT, "issues": [1]})):
        err = await _error(client, method, params)
        assert err.data["code"] == "CONFIG_INVALID", method
        assert err.data["details"]["key"] == "gitlab.base_url"
        assert err.data["details"]["suggested"] == sim.base_url
        assert [a["kind"] for a in err.data["actions"]] == ["fixConfig"]
    assert sim.control.stats()["requests"] == 0  # refused before any request carried the token


async def test_a_server_that_is_not_gitlab_is_named_so_not_blamed_on_the_token(
    clients: ClientPool, daemon_env: DaemonEnv, intranet: str
) -> None:
    daemon_env.write_config(base_url=intranet)
    client = await clients.start(daemon_env.with_token("glpat-whatever"))
    err = await _error(client, "lore/sync", {})
    assert err.data["code"] == "CONFIG_INVALID" and err.data["details"]["key"] == "gitlab.base_url"
    assert "does not look like GitLab's API" in err.data["message"]
    assert "fixToken" not in [a["kind"] for a in err.data["actions"]]
    result = await rpc(client, "lore/syncSurgical", {"project": PROJECT, "issues": [1]})
    assert result["status"] == "failed"
    assert {f["code"] for f in result["entityFailures"]} == {"CONFIG_INVALID"}
    assert "fixToken" not in [a["kind"] for a in result["recoveryActions"]]


async def test_an_interactive_run_under_a_rate_limit_fails_fast_with_wait_and_retry(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    sim.control.set_option("rate_limit_period_s", 3600)  # a self-managed hour-long window...
    sim.control.set_option("rate_limit", 1)  # ...whose budget the first request spends
    client = await clients.start(env)
    result = await rpc(client, "lore/syncSurgical", {"project": PROJECT, "issues": [1, 2]}, timeout=15)
    assert result["status"] == "failed" and result["failedPhase"] == "preflight"
    assert {f["code"] for f in result["entityFailures"]} == {"GITLAB_RATE_LIMITED"}
    wait = next(a for a in result["recoveryActions"] if a["kind"] == "waitAndRetry")
    assert 1_000 <= wait["afterMs"] <= 3_600_000
    assert wait["request"]["method"] == "lore/syncSurgical"
    assert result["stageTimingsMs"]["preflight"] < 10_000  # failed fast: did not wait for the reset


async def test_a_standard_sync_waits_out_a_shared_429_pause_and_completes(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    sim.control.add_fault(r"/discussions$", kind="rate_limit", retry_after=2, times=2)
    client = await clients.start(env)
    result = await rpc(client, "lore/sync", {"noEmbed": True}, timeout=60)
    assert result["status"] == "succeeded", result["entityFailures"]
    assert result["counters"]["rateLimitWaits"] >= 1 and result["counters"]["waitMs"] >= 2_000
    reports = [p["message"] for p in client.lore_progress if "rate_limit" in p.get("message", "")]
    assert reports  # the wait was visible while it happened
    throttled = [e for e in sim.control.log() if e["status"] == 429]
    assert 1 <= len(throttled) <= 2
    conn = apsw.Connection(str(env.db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        (issues,) = conn.execute("SELECT count(*) FROM issues").fetchone()
        (unsynced,) = conn.execute(
            "SELECT count(*) FROM issues WHERE discussions_synced_for_updated_at IS NULL"
        ).fetchone()
    finally:
        conn.close()
    assert issues == 25 and unsynced == 0


async def test_keyset_pages_external_trackers_and_an_older_gitlab_all_sync(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    sim.control.set_project_option(PROJECT, "external_tracker", True)
    client = await clients.start(env)
    first = await rpc(client, "lore/sync", {"noEmbed": True}, timeout=60)
    assert first["status"] == "succeeded", first["entityFailures"]
    queries = [e["query"] for e in sim.control.log() if e["path"] == "/api/v4/projects/1/issues"]
    assert queries and all("pagination=keyset" in q for q in queries)
    truth = sim.control.dump(PROJECT)
    internal = {(mr["id"], i["id"]) for mr in truth["merge_requests"]
                for i in truth["closes_issues"][str(mr["iid"])] if isinstance(i["id"], int)}
    external = [i for items in truth["closes_issues"].values() for i in items if isinstance(i["id"], str)]
    assert internal and external  # the MRs close both kinds
    conn = apsw.Connection(str(env.db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        links = set(conn.execute(
            "SELECT source_id, target_id FROM entity_references WHERE reference_type = 'closes'"
        ).fetchall())
    finally:
        conn.close()
    assert links == internal  # internal links stored; external items did not fail the page

    sim.control.set_option("keyset_issues", False)  # the same data from a GitLab before 18.3
    sim.control.mutate("bump_issue", project=PROJECT, iid=4)
    sim.control.clear_log()
    again = await rpc(client, "lore/sync", {"noEmbed": True}, timeout=60)
    assert again["status"] == "succeeded" and again["counters"]["issuesIngested"] >= 1
    issue_requests = [e for e in sim.control.log() if e["path"] == "/api/v4/projects/1/issues"]
    assert [e["status"] for e in issue_requests][:1] == [405]  # tried once, then offset pages
    assert all("keyset" not in e["query"] for e in issue_requests[1:])
