"""Data a long-lived GitLab has: external tracker issues, big threads, deleted users, microseconds."""

from __future__ import annotations

import re
from typing import Any

import httpx

from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.timeutil import iso_to_ms
from tests.sim.test_schemas import check

MICRO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_external_tracker_items_in_closes_issues(sim: SimServer, api: httpx.Client) -> None:
    def closes() -> dict[int, list[dict[str, Any]]]:
        return {m: api.get(f"/projects/1/merge_requests/{m}/closes_issues").json() for m in range(1, 21)}

    internal_only = closes()
    sim.control.set_project_option("group/project", "external_tracker", True)
    mixed = closes()
    external = [item for items in mixed.values() for item in items if isinstance(item["id"], str)]
    assert external, "some MRs close external issues"
    assert any(i["id"].isdigit() for i in external) and any("-" in i["id"] for i in external)
    for item in external:
        assert item == {"title": f"External Issue {item['id']}", "id": item["id"]}  # no iid, string id
    for m, items in mixed.items():
        internal = [i for i in items if isinstance(i["id"], int)]
        assert internal == internal_only[m]  # the project's own issues are still there, first
        assert items == internal + [i for i in items if isinstance(i["id"], str)]
        for issue in internal:
            check("issue.json", issue)
    assert sim.control.dump("group/project")["closes_issues"] == {str(m): v for m, v in mixed.items()}
    other = api.get("/projects/2/merge_requests/1/closes_issues").json()
    assert all(isinstance(i["id"], int) for i in other)  # a per-project setting


def test_closes_issues_with_external_items_paginates_like_any_list(sim: SimServer, api: httpx.Client) -> None:
    sim.control.set_project_option(1, "external_tracker", True)
    lists = {m: api.get(f"/projects/1/merge_requests/{m}/closes_issues").json() for m in range(1, 21)}
    m, whole = next((m, v) for m, v in lists.items() if len(v) >= 3 and isinstance(v[-1]["id"], str))
    assert isinstance(whole[0]["id"], int)
    paged = []
    for page in range(1, len(whole) + 1):
        paged += api.get(f"/projects/1/merge_requests/{m}/closes_issues", params={"per_page": 1,
                                                                                 "page": page}).json()
    assert paged == whole


def test_very_hot_entities_have_dependents_on_several_pages_of_100() -> None:
    with SimServer(SimConfig(seed=3, issues=60, mrs=50, notes_per_entity=6)) as sim, httpx.Client(
        base_url=f"{sim.base_url}/api/v4", headers={"PRIVATE-TOKEN": sim.token}, trust_env=False
    ) as api:
        for prefix in ("issues", "merge_requests"):
            first = api.get(f"/projects/1/{prefix}/42/discussions", params={"per_page": 100})
            assert len(first.json()) == 100 and first.headers["x-next-page"] == "2"
            assert int(first.headers["x-total"]) > 100
            events = api.get(f"/projects/1/{prefix}/42/resource_label_events", params={"per_page": 100})
            assert len(events.json()) == 100 and events.headers["x-next-page"] == "2"
            entity = api.get(f"/projects/1/{prefix}/42").json()
            assert entity["user_notes_count"] > 100
        normal = api.get("/projects/1/issues/41/discussions", params={"per_page": 100})
        assert normal.headers["x-next-page"] == ""


def test_some_notes_belong_to_the_ghost_user(api: httpx.Client) -> None:
    authors = [
        n["author"]
        for iid in range(1, 40)
        for d in api.get(f"/projects/1/issues/{iid}/discussions", params={"per_page": 100}).json()
        for n in d["notes"]
    ]
    ghosts = [a for a in authors if a["username"] == "ghost"]
    assert ghosts and all(a["name"] == "Ghost User" for a in ghosts)
    check("user/basic.json", ghosts[0])


def test_microsecond_timestamps_on_notes_and_events(sim: SimServer, api: httpx.Client) -> None:
    path = "/projects/1/issues/7"
    before = api.get(f"{path}/discussions", params={"per_page": 100}).json()
    label_before = api.get(f"{path}/resource_label_events").json()
    sim.control.set_option("microsecond_timestamps", True)
    after = api.get(f"{path}/discussions", params={"per_page": 100}).json()
    labels = api.get(f"{path}/resource_label_events").json()
    notes_before = [n for d in before for n in d["notes"]]
    notes_after = [n for d in after for n in d["notes"]]
    assert len(notes_after) == len(notes_before) and notes_after
    assert any(not n["created_at"].endswith("000Z") for n in notes_after)
    for old, new in zip(notes_before, notes_after, strict=True):
        assert MICRO.match(new["created_at"]) and iso_to_ms(new["created_at"]) == iso_to_ms(old["created_at"])
    for old_e, new_e in zip(label_before, labels, strict=True):
        assert MICRO.match(new_e["created_at"])
        assert iso_to_ms(new_e["created_at"]) == iso_to_ms(old_e["created_at"])
    one = api.get(f"{path}/discussions/{after[0]['id']}").json()
    assert one == after[0]
    issue = api.get(path).json()  # what lists filter on keeps GitLab's usual milliseconds
    assert re.match(r".*\.\d{3}Z$", issue["updated_at"])
