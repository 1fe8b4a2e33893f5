"""Mutations change the truth the way GitLab would, and lists/dependents/dumps show it."""

from __future__ import annotations

import httpx
import pytest

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim import SimServer


def test_bump_issue_and_mr_move_updated_at_strictly_forward(sim: SimServer, api: httpx.Client) -> None:
    for kind, path in (("issue", "issues"), ("mr", "merge_requests")):
        before = api.get(f"/projects/1/{path}/3").json()["updated_at"]
        result = sim.control.mutate(f"bump_{kind}", project="group/project", iid=3)
        after = api.get(f"/projects/1/{path}/3").json()["updated_at"]
        assert after > before and result["updated_at"] == after
        again = sim.control.mutate(f"bump_{kind}", project=1, iid=3)["updated_at"]
        assert again > after
        listed = api.get(f"/projects/1/{path}", params={"updated_after": again}).json()
        assert [item["iid"] for item in listed] == [3]


def test_add_note_adds_a_discussion_and_bumps_the_parent(sim: SimServer, api: httpx.Client) -> None:
    issue = api.get("/projects/1/issues/2").json()
    count = int(api.get("/projects/1/issues/2/discussions").headers["x-total"])
    result = sim.control.mutate("add_note", project="group/project", kind="issue", iid=2, body="Fresh remark")
    after = api.get("/projects/1/issues/2").json()
    assert after["updated_at"] > issue["updated_at"]
    assert after["user_notes_count"] == issue["user_notes_count"] + 1
    discussions = api.get("/projects/1/issues/2/discussions", params={"per_page": 100}).json()
    assert len(discussions) == count + 1
    newest = discussions[-1]
    assert newest["id"] == result["discussion_id"] and newest["individual_note"] is True
    note = newest["notes"][0]
    assert note["body"] == "Fresh remark" and note["id"] == result["note_id"] and note["system"] is False
    assert note["created_at"] == after["updated_at"] and note["noteable_id"] == after["id"]


def test_add_note_on_an_mr(sim: SimServer, api: httpx.Client) -> None:
    sim.control.mutate("add_note", project="group/project", kind="mr", iid=5, body="LGTM")
    last = api.get("/projects/1/merge_requests/5/discussions", params={"per_page": 100}).json()[-1]
    assert last["notes"][0]["noteable_type"] == "MergeRequest" and last["notes"][0]["body"] == "LGTM"


def test_close_and_reopen_issue_record_state_events(sim: SimServer, api: httpx.Client) -> None:
    opened = api.get("/projects/1/issues", params={"state": "opened", "per_page": 1}).json()[0]
    iid = opened["iid"]
    events_before = api.get(f"/projects/1/issues/{iid}/resource_state_events").json()
    closed = sim.control.mutate("close_issue", project="group/project", iid=iid)
    issue = api.get(f"/projects/1/issues/{iid}").json()
    assert issue["state"] == "closed" and issue["closed_at"] == closed["updated_at"] == issue["updated_at"]
    assert issue["closed_by"]["id"] == 1
    events = api.get(f"/projects/1/issues/{iid}/resource_state_events").json()
    assert events[:-1] == events_before and events[-1]["state"] == "closed"
    assert events[-1]["created_at"] == issue["updated_at"] and events[-1]["resource_id"] == issue["id"]
    assert iid in [
        i["iid"] for i in api.get("/projects/1/issues", params={"state": "closed", "per_page": 100}).json()
    ]
    sim.control.mutate("reopen_issue", project="group/project", iid=iid)
    reopened = api.get(f"/projects/1/issues/{iid}").json()
    assert reopened["state"] == "opened" and reopened["closed_at"] is None
    assert api.get(f"/projects/1/issues/{iid}/resource_state_events").json()[-1]["state"] == "reopened"


def test_hide_issue_removes_it_from_closes_issues(sim: SimServer, api: httpx.Client) -> None:
    mr_iid, issue_iid = next(
        (m, issues[0]["iid"])
        for m in range(1, 21)
        if (issues := api.get(f"/projects/1/merge_requests/{m}/closes_issues").json())
    )
    sim.control.mutate("hide_issue", project="group/project", iid=issue_iid)
    closes = api.get(f"/projects/1/merge_requests/{mr_iid}/closes_issues").json()
    assert issue_iid not in [i["iid"] for i in closes]
    sim.control.mutate("unhide_issue", project="group/project", iid=issue_iid)
    assert api.get(f"/projects/1/issues/{issue_iid}").status_code == 200


def test_add_label_records_a_label_event(sim: SimServer, api: httpx.Client) -> None:
    sim.control.mutate("add_label", project="group/project", kind="issue", iid=6, label="security")
    issue = api.get("/projects/1/issues/6").json()
    assert "security" in issue["labels"] and issue["labels"] == sorted(issue["labels"])
    event = api.get("/projects/1/issues/6/resource_label_events", params={"per_page": 100}).json()[-1]
    assert event["label"]["name"] == "security" and event["action"] == "add"


def test_dump_reflects_mutations(sim: SimServer) -> None:
    sim.control.mutate("add_note", project="group/project", kind="issue", iid=1, body="in the dump")
    sim.control.mutate("hide_issue", project="group/project", iid=2)
    dump = sim.control.dump("group/project")
    assert dump["hidden"]["issues"] == [2] and 2 not in [i["iid"] for i in dump["issues"]]
    assert dump["discussions"]["issues"]["1"][-1]["notes"][0]["body"] == "in the dump"


def test_bad_mutations_are_rejected(sim: SimServer) -> None:
    with pytest.raises(InvalidParamsError, match="unknown mutation"):
        sim.control.mutate("delete_everything")
    with pytest.raises(InvalidParamsError, match="iid"):
        sim.control.mutate("bump_issue", project="group/project", iid=10_000)
    with pytest.raises(InvalidParamsError, match="bad arguments"):
        sim.control.mutate("bump_issue", project="group/project")
