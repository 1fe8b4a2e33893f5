"""The request log: what was asked, how it authenticated — never the token itself."""

from __future__ import annotations

import json

import httpx

from lore_daemon.sim import SimServer


def test_log_records_auth_kind_without_the_token(sim: SimServer, raw: httpx.Client) -> None:
    raw.get("/api/v4/user", headers={"PRIVATE-TOKEN": sim.token})
    raw.get("/api/v4/user", headers={"Authorization": f"Bearer {sim.token}"})
    raw.get("/api/v4/projects/1/issues", params={"private_token": sim.token, "state": "opened"})
    raw.get("/api/v4/user")
    entries = sim.control.log()
    assert [(e["has_token"], e["auth_header_kind"], e["status"]) for e in entries] == [
        (True, "private-token", 200),
        (True, "bearer", 200),
        (True, "query", 200),
        (False, None, 401),
    ]
    assert entries[2]["query"] == "private_token=[FILTERED]&state=opened"
    assert sim.token not in json.dumps(entries) and sim.token not in json.dumps(sim.control.stats())
    first = entries[0]
    assert first["method"] == "GET" and first["path"] == "/api/v4/user" and first["outcome"] == "ok"
    assert first["seq"] == 1 and first["finished_at"] >= first["started_at"] > 0


def test_log_since_and_clear(sim: SimServer, api: httpx.Client) -> None:
    for iid in (1, 2, 3):
        api.get(f"/projects/1/issues/{iid}")
    assert [e["path"] for e in sim.control.log(since=2)] == ["/api/v4/projects/1/issues/3"]
    sim.control.clear_log()
    assert sim.control.log() == [] and sim.control.stats()["requests"] == 0
    api.get("/projects/1")
    assert sim.control.log()[0]["seq"] == 4  # sequence numbers keep rising across clears


def test_control_requests_are_not_logged(sim: SimServer) -> None:
    sim.control.stats()
    sim.control.faults()
    assert sim.control.log() == []
