"""``lore/get`` read-through end to end: whether the daemon went to GitLab is proven by the
simulator's request log, never by timing. Each test has its own daemon and copy of the mirror."""

from __future__ import annotations

from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from lore_daemon.sim import SimServer
from tests.daemon.support import ClientPool, DaemonEnv, rpc

from .support import PROJECT, api_requests, query

ISSUES = "/api/v4/projects/1/issues"


def _since(sim: SimServer, seq: int) -> list[str]:
    return api_requests(sim.control.log(since=seq))


def _seq(sim: SimServer) -> int:
    return int(sim.control.stats()["last_seq"])


async def test_an_older_copy_is_refreshed_by_a_surgical_sync_first(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    sim.control.mutate("add_note", project=PROJECT, kind="issue", iid=6, body="read-through brings this in")
    client = await clients.start(env)
    before = _seq(sim)

    got = await rpc(client, "lore/get", {"ref": "#6", "maxAgeMs": 0})

    requests = _since(sim, before)
    assert f"GET {ISSUES}/6" in requests and f"GET {ISSUES}/6/discussions" in requests
    others = [r for r in requests if not r.startswith(f"GET {ISSUES}/6")]
    # That one entity and nothing else: the project is known to the mirror, so its id is reused.
    assert others == []
    assert got["local"]["source"] == "synced" and got["local"]["ageMs"] < 60_000
    sync = got["sync"]
    assert (sync["mode"], sync["status"], sync["requested"]["issues"]) == ("surgical", "succeeded", [6])
    assert [(e["kind"], e["iid"], e["outcome"]) for e in sync["entities"]] == [("issue", 6, "ingested")]
    bodies = [n["body"] for d in got["discussions"] for n in d["notes"]]
    assert "read-through brings this in" in bodies
    assert got["warnings"] == []
    assert {n["runId"] for n in client.lore_progress} == {sync["runId"]}  # the run's progress, as a sync's
    runs = (await rpc(client, "lore/syncRuns", {"runId": sync["runId"]}))["runs"]
    assert [(r["mode"], r["status"]) for r in runs] == [("surgical", "succeeded")]


async def test_a_recent_enough_copy_is_read_without_any_request(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    client = await clients.start(env)
    before = _seq(sim)
    got = await rpc(client, "lore/get", {"ref": "#6", "maxAgeMs": 10 * 365 * 86_400_000})
    assert got["local"]["source"] == "mirror" and got["sync"] is None
    assert _since(sim, before) == []


async def test_a_missing_entity_is_synced_in(clients: ClientPool, env: DaemonEnv, sim: SimServer) -> None:
    env.db_path.unlink()  # an empty mirror: the daemon creates a fresh database
    client = await clients.start(env)
    before = _seq(sim)

    params = {"ref": "!3", "maxAgeMs": 60_000, "include": ["links", "fileChanges"]}
    got = await rpc(client, "lore/get", params)

    assert (got["kind"], got["iid"], got["local"]["source"]) == ("mr", 3, "synced")
    assert got["fileChanges"] and got["sync"]["status"] == "succeeded"
    assert "GET /api/v4/projects/1/merge_requests/3" in _since(sim, before)
    assert query(env.db_path, "SELECT iid FROM merge_requests") == [(3,)]  # exactly that one entity


async def test_offline_never_touches_the_network(clients: ClientPool, env: DaemonEnv, sim: SimServer) -> None:
    client = await clients.start(env)
    before = _seq(sim)

    old = await rpc(client, "lore/get", {"ref": "#4", "maxAgeMs": 0, "offline": True})
    with pytest.raises(JsonRpcException) as err:
        await rpc(client, "lore/get", {"ref": "#4444", "maxAgeMs": 0, "offline": True})

    assert _since(sim, before) == []
    assert old["local"]["source"] == "mirror" and old["sync"] is None
    assert old["warnings"] and "offline" in old["warnings"][0]
    assert err.value.data["code"] == "NOT_IN_MIRROR"
    (action,) = err.value.data["actions"]
    assert action["request"]["params"] == {"ref": "#4444", "maxAgeMs": 0}  # the action syncs it


async def test_a_failed_read_through_returns_the_local_copy_with_a_warning(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    client = await clients.start(env)
    title = query(env.db_path, "SELECT title FROM issues WHERE iid = 8 AND project_id = 1")[0][0]
    sim.control.mutate("hide_issue", project=PROJECT, iid=8)  # GitLab now answers 404 for it
    try:
        before = _seq(sim)
        got = await rpc(client, "lore/get", {"ref": "#8", "maxAgeMs": 0})
    finally:
        sim.control.mutate("unhide_issue", project=PROJECT, iid=8)

    assert f"GET {ISSUES}/8" in _since(sim, before)
    assert got["title"] == title and got["local"]["source"] == "mirror"
    assert got["sync"]["status"] == "failed"
    assert [f["code"] for f in got["sync"]["entityFailures"]] == ["GITLAB_NOT_FOUND"]
    (warning,) = got["warnings"]
    assert "read-through sync failed" in warning and "local copy" in warning


async def test_a_failed_read_through_without_a_copy_is_the_error(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    client = await clients.start(env)
    with pytest.raises(JsonRpcException) as err:
        await rpc(client, "lore/get", {"ref": "#9999", "maxAgeMs": 0})
    data: dict[str, Any] = err.value.data
    assert (err.value.code, data["code"]) == (-32803, "GITLAB_NOT_FOUND")
    assert data["details"]["runId"] and data["details"]["iid"] == 9999
    assert [a["kind"] for a in data["actions"]] == ["checkTarget"]
    runs = (await rpc(client, "lore/syncRuns", {"runId": data["details"]["runId"]}))["runs"]
    assert [(r["status"], r["failedPhase"]) for r in runs] == [("failed", "preflight")]


async def test_without_a_token_the_copy_comes_back_with_a_warning(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    env.env.pop("GITLAB_TOKEN")
    client = await clients.start(env)
    before = _seq(sim)

    got = await rpc(client, "lore/get", {"ref": "#5", "maxAgeMs": 0})
    with pytest.raises(JsonRpcException) as err:
        await rpc(client, "lore/get", {"ref": "#5555", "maxAgeMs": 0})

    assert got["local"]["source"] == "mirror" and "TOKEN_NOT_SET" in got["warnings"][0]
    assert err.value.data["code"] == "TOKEN_NOT_SET"
    assert _since(sim, before) == []
