"""``lore/list`` end to end: every filter, sort and order checked page by page against the
simulator's own truth, the cursor rules, and pages that stay complete while a sync writes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from lore_daemon.sim import SimServer
from lore_daemon.timeutil import iso_to_ms
from tests.daemon.support import ClientPool, DaemonEnv, RawDaemon, rpc
from tests.daemon.test_methods import _schema

from .support import OTHER, PROJECT, query

Item = dict[str, Any]


@pytest.fixture(scope="module")
def truth(sim: SimServer) -> list[Item]:
    """Every issue and MR of both projects, as the simulator has them, in list-summary terms."""
    items: list[Item] = []
    for project in (PROJECT, OTHER):
        dump = sim.control.dump(project)
        for kind, key in (("issue", "issues"), ("mr", "merge_requests")):
            for e in dump[key]:
                items.append({
                    "kind": kind, "iid": e["iid"], "id": e["id"], "project": project, "title": e["title"],
                    "state": e["state"], "labels": sorted(e["labels"]), "author": e["author"]["username"],
                    "assignees": [a["username"] for a in e["assignees"]],
                    "milestone": (e["milestone"] or {}).get("title"),
                    "updated": iso_to_ms(e["updated_at"]), "created": iso_to_ms(e["created_at"]),
                    "webUrl": e["web_url"], "notesCount": e["user_notes_count"],
                })
    return items


def _expected(truth: list[Item], keep: Callable[[Item], bool], sort: str = "updated",
              order: str = "desc") -> list[tuple[str, int, str]]:
    rank = {"issue": 0, "mr": 1}
    chosen = sorted((i for i in truth if keep(i)), key=lambda i: (i[sort], rank[i["kind"]], i["id"]),
                    reverse=order == "desc")
    return [(i["kind"], i["iid"], i["project"]) for i in chosen]


def _all_pages(reader: RawDaemon, params: dict[str, Any]) -> tuple[list[Item], int]:
    items: list[Item] = []
    pages = 0
    cursor = None
    while True:
        response = reader.request("lore/list", {**params, **({"cursor": cursor} if cursor else {})})
        assert "result" in response, response
        page = response["result"]
        pages += 1
        assert len(page["items"]) <= params.get("limit", 50)
        if page["nextCursor"] is not None:
            assert len(page["items"]) == params.get("limit", 50)  # only a full page says "more"
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items, pages


def _keys(items: list[Item]) -> list[tuple[str, int, str]]:
    return [(i["kind"], i["iid"], i["project"]) for i in items]


def test_the_first_page_is_the_newest_and_typed(reader: RawDaemon, truth: list[Item]) -> None:
    page = reader.request("lore/list", {"limit": 10})["result"]
    jsonschema.validate(page, _schema("ListResult"))
    assert _keys(page["items"]) == _expected(truth, lambda i: True)[:10]
    assert page["nextCursor"] is not None
    first = page["items"][0]
    want = next(i for i in truth if (i["kind"], i["iid"], i["project"]) == _keys([first])[0])
    for field in ("title", "state", "author", "webUrl", "notesCount", "labels"):
        assert first[field] == want[field], field
    assert iso_to_ms(first["updatedAt"]) == want["updated"]
    assert iso_to_ms(first["createdAt"]) == want["created"]


FILTERS: list[tuple[dict[str, Any], Callable[[Item], bool]]] = [
    ({}, lambda i: True),
    ({"kind": "issue"}, lambda i: i["kind"] == "issue"),
    ({"kind": "mr", "state": "merged"}, lambda i: i["kind"] == "mr" and i["state"] == "merged"),
    ({"state": "opened"}, lambda i: i["state"] == "opened"),
    ({"state": "all"}, lambda i: True),
    ({"project": OTHER}, lambda i: i["project"] == OTHER),
    ({"project": "GROUP/Sub/Other"}, lambda i: i["project"] == OTHER),
    ({"project": "1"}, lambda i: i["project"] == PROJECT),
    ({"project": "no/such-project"}, lambda i: False),
    ({"labels": ["bug"]}, lambda i: "bug" in i["labels"]),
    ({"labels": ["bug", "Backend"]}, lambda i: {"bug", "backend"} <= set(i["labels"])),
    ({"author": "@Brian.Scott13"}, lambda i: i["author"] == "brian.scott13"),
    ({"assignee": "mateo.petrov12"}, lambda i: "mateo.petrov12" in i["assignees"]),
    ({"milestone": "v1.2"}, lambda i: i["milestone"] == "v1.2"),
    ({"updatedAfter": "2025-01-01T00:00:00Z"}, lambda i: i["updated"] >= iso_to_ms("2025-01-01T00:00:00Z")),
    ({"kind": "issue", "state": "closed", "labels": ["feature"], "project": PROJECT},
     lambda i: i["kind"] == "issue" and i["state"] == "closed" and "feature" in i["labels"]
     and i["project"] == PROJECT),
]


@pytest.mark.parametrize(("params", "keep"), FILTERS, ids=[repr(p) for p, _ in FILTERS])
def test_every_filter_pages_through_exactly_its_items(
    reader: RawDaemon, truth: list[Item], params: dict[str, Any], keep: Callable[[Item], bool]
) -> None:
    items, pages = _all_pages(reader, {**params, "limit": 7})
    expected = _expected(truth, keep)
    assert _keys(items) == expected
    assert pages == max(1, -(-len(expected) // 7))


@pytest.mark.parametrize(("sort", "order"), [("updated", "asc"), ("created", "desc"), ("created", "asc")])
def test_sort_and_order(reader: RawDaemon, truth: list[Item], sort: str, order: str) -> None:
    items, _ = _all_pages(reader, {"sort": sort, "order": order, "limit": 13})
    assert _keys(items) == _expected(truth, lambda i: True, sort, order)


def test_ties_are_broken_by_kind_then_id_so_no_page_boundary_loses_one(
    reader: RawDaemon, truth: list[Item]
) -> None:
    tied = [t for t in truth if sum(1 for u in truth if u["updated"] == t["updated"]) > 1]
    assert len(tied) >= 5  # the simulator gives iids 10-14 of every 50 one exact updated_at
    for limit in (1, 2, 3):
        items, _ = _all_pages(reader, {"limit": limit, "project": PROJECT, "kind": "issue"})
        assert _keys(items) == _expected(truth, lambda i: i["project"] == PROJECT and i["kind"] == "issue")


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"limit": 201}, "$.limit"),
        ({"limit": 0}, "$.limit"),
        ({"cursor": "not-a-cursor"}, "$.cursor"),
        ({"cursor": "v1.!!!"}, "$.cursor"),
        ({"cursor": "v1.WzEsMiwzXQ"}, "$.cursor"),  # base64 of [1,2,3]: well-formed, not ours
        ({"sort": "title"}, "$.sort"),
        ({"labels": "bug"}, "$.labels"),
    ],
)
def test_bad_params_are_invalid_params(reader: RawDaemon, params: dict[str, Any], path: str) -> None:
    error = reader.request("lore/list", params)["error"]
    assert (error["code"], error["data"]["code"], error["data"]["details"]["path"]) == (
        -32602, "INVALID_PARAMS", path
    )


def test_a_cursor_only_continues_the_query_it_came_from(reader: RawDaemon) -> None:
    cursor = reader.request("lore/list", {"limit": 3, "state": "opened"})["result"]["nextCursor"]
    assert "result" in reader.request("lore/list", {"limit": 9, "state": "opened", "cursor": cursor})
    others: list[dict[str, Any]] = [
        {"state": "closed"}, {"state": "opened", "order": "asc"}, {"state": "opened", "kind": "mr"},
    ]
    for other in others:
        error = reader.request("lore/list", {**other, "cursor": cursor})["error"]
        assert error["data"]["details"]["path"] == "$.cursor"
        assert "other filters" in error["message"]


async def test_pages_stay_complete_and_without_duplicates_while_a_sync_writes(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    """A standard sync re-ingests 40 updated issues (and their notes and documents) while a client
    pages through the list 3 items at a time. Newest-first pages never repeat an item, and every
    item whose updatedAt the sync did not change is listed exactly once; oldest-created-first
    pages (a key that never changes) list every item exactly once."""
    before = {(r[0], r[1], r[2]): r[3] for r in query(env.db_path, _ALL_ROWS)}
    for iid in range(1, 41):
        sim.control.mutate("bump_issue", project=PROJECT, iid=iid)
    sim.control.set_latency(40)  # so the sync is still writing while the pages are read
    client = await clients.start(env)
    try:
        sync = asyncio.ensure_future(rpc(client, "lore/sync", {}, timeout=120))
        (newest, during), (created, during_created) = await asyncio.gather(
            _page_while(client, sync, {"limit": 3}),
            _page_while(client, sync, {"limit": 3, "sort": "created", "order": "asc"}),
        )
        result = await sync
    finally:
        sim.control.set_latency(0)
    after = {(r[0], r[1], r[2]): r[3] for r in query(env.db_path, _ALL_ROWS)}
    changed = {key for key, updated in before.items() if after[key] != updated}
    assert result["status"] == "succeeded" and result["counters"]["issuesIngested"] >= 40
    assert len(changed) >= 40 and during >= 3  # the sync really wrote while pages were read

    keys = [(i["kind"], i["project"], i["iid"]) for i in newest]
    assert len(keys) == len(set(keys))  # never twice
    assert set(before) - changed <= set(keys)  # every unchanged item, exactly once
    assert during_created >= 3
    keys = [(i["kind"], i["project"], i["iid"]) for i in created]
    assert sorted(keys) == sorted(before)  # created never moves: all of them, each once


_ALL_ROWS = """
SELECT 'issue', p.path_with_namespace, e.iid, e.updated_at FROM issues e
JOIN projects p ON p.gitlab_id = e.project_id
UNION ALL
SELECT 'mr', p.path_with_namespace, e.iid, e.updated_at FROM merge_requests e
JOIN projects p ON p.gitlab_id = e.project_id
"""


async def _page_while(
    client: Any, sync: asyncio.Future[Any], params: dict[str, Any]
) -> tuple[list[Item], int]:
    """Every page of ``params``; also how many pages were read while ``sync`` was running."""
    items: list[Item] = []
    during = 0
    cursor = None
    while True:
        during += not sync.done()
        page = await rpc(client, "lore/list", {**params, **({"cursor": cursor} if cursor else {})})
        items += page["items"]
        cursor = page["nextCursor"]
        if cursor is None:
            return items, during
        await asyncio.sleep(0.02)
