"""The client against the GitLab simulator: a real HTTP server on loopback (lore_daemon.sim).

Pagination over more than 10,000 items, each retry rule end to end (the simulator injects the
faults), and the shared concurrency limit measured from the simulator's own request log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lore_daemon.errors import GitLabAuthError, GitLabNotFoundError
from lore_daemon.gitlab import GitLabClient, RetryPolicy
from lore_daemon.sim import SimConfig, SimServer
from tests.support.sim import sim_fixture

from .support import WaitRecorder

PROJECT_ID = 1  # "group/project" in the simulator's seeded data
FAST = RetryPolicy(max_attempts=6, max_elapsed_s=30.0, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


sim = sim_fixture(SimConfig(seed=1, issues=300, mrs=40), scope="module")


@pytest.fixture(autouse=True)
def clean(sim: SimServer) -> Iterator[None]:
    sim.control.clear_faults()
    sim.control.set_option("omit_next_page_header", False)
    sim.control.set_option("keyset_issues", True)
    sim.control.clear_log()
    yield
    sim.control.clear_faults()
    sim.control.set_latency(0)


def client(sim: SimServer, **kw: Any) -> GitLabClient:
    kw.setdefault("retry", FAST)
    return GitLabClient(sim.base_url, sim.token, **kw)


def statuses(sim: SimServer, path_suffix: str) -> list[int | None]:
    return [e["status"] for e in sim.control.log() if e["path"].endswith(path_suffix)]


async def all_issue_iids(c: GitLabClient) -> list[int]:
    return [f.item.iid async for page in c.iter_issues(PROJECT_ID) for f in page]


# ------------------------------------------------------------------------------ pagination


async def test_walks_more_than_10000_issues_with_totals_omitted() -> None:
    with SimServer(SimConfig(seed=2, issues=10_050, mrs=0, other_issues=0, other_mrs=0)) as big:
        big.control.set_option("keyset_issues", False)  # offset pages: an older GitLab
        first = httpx.get(
            f"{big.base_url}/api/v4/projects/{PROJECT_ID}/issues",
            params={"per_page": 100},
            headers={"PRIVATE-TOKEN": big.token},
        )
        assert "x-total" not in first.headers and "x-total-pages" not in first.headers
        assert 'rel="last"' not in first.headers.get("link", "")
        async with client(big) as c:
            iids = await all_issue_iids(c)
        assert len(iids) == 10_050 and set(iids) == set(range(1, 10_051))
        assert big.control.stats()["requests"] == 103  # 1 header probe + a 405 to keyset + 101 pages


async def test_walk_without_next_page_headers_uses_full_page_rule(sim: SimServer) -> None:
    sim.control.set_option("keyset_issues", False)
    sim.control.set_option("omit_next_page_header", True)
    async with client(sim) as c:
        iids = await all_issue_iids(c)
    assert sorted(iids) == list(range(1, 301))
    pages = [e["query"] for e in sim.control.log() if e["status"] == 200]
    assert len(pages) == 4  # 3 full pages, then an empty page ends the walk
    assert all("per_page=100" in q and "page=" in q and "keyset" not in q for q in pages)


async def test_walk_with_small_total_threshold_and_updated_after(sim: SimServer) -> None:
    sim.control.set_option("total_threshold", 10)
    try:
        async with client(sim) as c:
            everything = [f.item async for page in c.iter_issues(PROJECT_ID) for f in page]
            cutoff = sorted(i.updated_at for i in everything)[150]
            recent = [f.item async for page in c.iter_issues(PROJECT_ID, updated_after=cutoff) for f in page]
    finally:
        sim.control.set_option("total_threshold", 10_000)
    assert len(everything) == 300
    assert [i.updated_at for i in everything] == sorted(i.updated_at for i in everything)  # asc
    assert {i.iid for i in recent} == {i.iid for i in everything if i.updated_at >= cutoff}  # inclusive


async def test_every_endpoint_matches_the_simulators_truth(sim: SimServer) -> None:
    truth = sim.control.dump("group/project")
    mr_iid = next(int(k) for k, v in truth["closes_issues"].items() if v)  # an MR that closes issues
    async with client(sim) as c:
        project = await c.get_project("group/project")
        issues = [f async for page in c.iter_issues(PROJECT_ID) for f in page]
        mrs = [f.item async for page in c.iter_merge_requests(PROJECT_ID) for f in page]
        discussions = await c.list_discussions(PROJECT_ID, "mr", mr_iid)
        diffs = await c.list_mr_diffs(PROJECT_ID, mr_iid)
        labels = await c.list_resource_events(PROJECT_ID, "issue", 1, "label")
        closes = await c.list_closes_issues(PROJECT_ID, mr_iid)
    assert (project.id, project.path_with_namespace) == (PROJECT_ID, "group/project")
    by_iid = {i["iid"]: i for i in truth["issues"]}
    assert all(json.loads(f.raw) == by_iid[f.item.iid] for f in issues)  # raw bytes are the item
    assert sorted(m.iid for m in mrs) == sorted(m["iid"] for m in truth["merge_requests"])
    mr_key = str(mr_iid)
    assert [d.id for d in discussions] == [d["id"] for d in truth["discussions"]["merge_requests"][mr_key]]
    assert [d.new_path for d in diffs] == [d["new_path"] for d in truth["diffs"][mr_key]]
    assert [e.id for e in labels] == [e["id"] for e in truth["events"]["issues"]["1"]["label"]]
    assert [i.iid for i in closes.internal] == [i["iid"] for i in truth["closes_issues"][mr_key]]
    assert closes.external == []


async def test_closes_issues_with_an_external_tracker_decodes_item_by_item(sim: SimServer) -> None:
    sim.control.set_project_option("group/project", "external_tracker", True)
    try:
        truth = sim.control.dump("group/project")["closes_issues"]
        async with client(sim) as c:
            got = {int(k): await c.list_closes_issues(PROJECT_ID, int(k)) for k in truth}
    finally:
        sim.control.set_project_option("group/project", "external_tracker", False)
    assert any(g.external for g in got.values()) and any(g.internal for g in got.values())
    for iid, closes in got.items():
        items = truth[str(iid)]
        assert [i.id for i in closes.internal] == [i["id"] for i in items if isinstance(i["id"], int)]
        assert [(e.id, e.title) for e in closes.external] == [
            (i["id"], i["title"]) for i in items if isinstance(i["id"], str)
        ]


# ------------------------------------------------------------------------------ retries


async def test_429_with_retry_after(sim: SimServer) -> None:
    sim.control.add_fault(r"/user$", kind="rate_limit", retry_after=1, times=1)
    async with client(sim) as c:
        with WaitRecorder() as rec:
            user = await c.get_user()
    assert user.username
    assert [(w.reason, w.status, w.wait_ms) for w in rec.waits] == [("rate_limit", 429, 1000)]
    assert statuses(sim, "/user") == [429, 200]


async def test_429_with_ratelimit_reset_only(sim: SimServer) -> None:
    # RateLimit-Reset = ceil(now + 1 s) and no Retry-After: the wait must come from the reset time.
    sim.control.add_fault(r"/user$", kind="rate_limit", ratelimit_reset=True, times=1)
    async with client(sim) as c:
        with WaitRecorder() as rec:
            await c.get_user()
    assert [w.reason for w in rec.waits] == ["rate_limit"]
    assert 500 < rec.waits[0].wait_ms <= 2000  # the backoff would have been 10 ms
    assert statuses(sim, "/user") == [429, 200]


async def test_429_without_headers_backs_off(sim: SimServer) -> None:
    sim.control.add_fault(r"/user$", kind="rate_limit", times=2)
    async with client(sim) as c:
        with WaitRecorder() as rec:
            await c.get_user()
    assert [(w.reason, w.wait_ms) for w in rec.waits] == [("rate_limit", 10), ("rate_limit", 20)]
    assert statuses(sim, "/user") == [429, 429, 200]


async def test_502_then_200(sim: SimServer) -> None:
    sim.control.add_fault(rf"/projects/{PROJECT_ID}/issues/3$", statuses=[502, 200])
    async with client(sim) as c:
        with WaitRecorder() as rec:
            fetched = await c.get_issue(PROJECT_ID, 3)
    assert fetched.item.iid == 3 and [w.reason for w in rec.waits] == ["server_error"]
    assert statuses(sim, "/issues/3") == [502, 200]


async def test_timeout_then_200(sim: SimServer) -> None:
    sim.control.add_fault(r"/version$", kind="timeout", times=1, hold_s=3.0)
    async with client(sim, timeout=0.5) as c:
        with WaitRecorder() as rec:
            version = await c.get_version()
    assert version.version and [w.reason for w in rec.waits] == ["timeout"]
    assert len(statuses(sim, "/version")) == 2


@pytest.mark.parametrize(("kind", "reason"), [("drop", "connection"), ("malformed", "bad_body")])
async def test_dropped_or_malformed_then_200(sim: SimServer, kind: str, reason: str) -> None:
    sim.control.add_fault(rf"/projects/{PROJECT_ID}/merge_requests/2$", kind=kind, times=1)
    async with client(sim) as c:
        with WaitRecorder() as rec:
            fetched = await c.get_merge_request(PROJECT_ID, 2)
    assert fetched.item.iid == 2 and [w.reason for w in rec.waits] == [reason]


async def test_truncated_body_then_200(sim: SimServer) -> None:
    sim.control.add_fault(rf"/projects/{PROJECT_ID}/issues/4$", kind="truncate", times=1)
    async with client(sim) as c:
        with WaitRecorder() as rec:
            fetched = await c.get_issue(PROJECT_ID, 4)
    assert fetched.item.iid == 4 and len(rec.waits) == 1
    assert rec.waits[0].reason in ("connection", "bad_body")  # short read or cut JSON, both retried


async def test_404_is_not_retried(sim: SimServer) -> None:
    async with client(sim) as c:
        with WaitRecorder() as rec, pytest.raises(GitLabNotFoundError) as caught:
            await c.get_issue(PROJECT_ID, 999_999)
    assert rec.waits == [] and statuses(sim, "/issues/999999") == [404]
    assert "404 Issue Not Found" in caught.value.message


async def test_bad_token_is_not_retried_and_not_echoed(sim: SimServer) -> None:
    async with GitLabClient(sim.base_url, "wrong-token-value", retry=FAST) as c:
        with pytest.raises(GitLabAuthError) as caught:
            await c.get_user()
    assert "wrong-token-value" not in str(caught.value) and statuses(sim, "/user") == [401]


# ------------------------------------------------------------------------------ concurrency


def max_overlap(entries: list[dict[str, Any]]) -> int:
    """Most requests in flight at once, from the server's start/finish timestamps."""
    edges = sorted(
        [(e["started_at"], 1) for e in entries] + [(e["finished_at"], -1) for e in entries],
        key=lambda edge: (edge[0], edge[1]),
    )  # a finish sorts before a start at the same ms
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


async def test_concurrency_limit_is_respected_across_tasks(sim: SimServer) -> None:
    sim.control.set_latency(40)
    async with client(sim, concurrency=3) as c:

        async def run(iids: range) -> None:  # two "runs" sharing one client
            await asyncio.gather(*(c.get_issue(PROJECT_ID, i) for i in iids))

        await asyncio.gather(run(range(1, 16)), run(range(16, 31)))
    entries = sim.control.log()
    assert len(entries) == 30 and all(e["status"] == 200 for e in entries)
    assert 2 <= max_overlap(entries) <= 3  # concurrent, and never above the limit
    assert sim.control.stats()["max_in_flight"] <= 3
