"""Keyset pagination of the issues listing: used where GitLab offers it, offset after a 405."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lore_daemon.errors import GitLabBadResponseError, GitLabRequestError
from lore_daemon.gitlab import GitLabClient, RetryPolicy
from lore_daemon.sim import SimConfig, SimServer

from .support import BASE, FAST, TOKEN, Script, issue, page_response

ISSUES = "/api/v4/projects/7/issues"
SIM_FAST = RetryPolicy(max_attempts=6, max_elapsed_s=30.0, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=6, issues=250, mrs=30)) as server:
        yield server


def sim_client(sim: SimServer) -> GitLabClient:
    return GitLabClient(sim.base_url, sim.token, retry=SIM_FAST)


def issue_queries(sim: SimServer) -> list[str]:
    return [e["query"] for e in sim.control.log() if e["path"].endswith("/projects/1/issues")]


async def test_issues_are_walked_by_cursor_where_gitlab_offers_it(sim: SimServer) -> None:
    async with sim_client(sim) as c:
        iids = [f.item.iid async for page in c.iter_issues(1) for f in page]
        mrs = [f.item.iid async for page in c.iter_merge_requests(1) for f in page]
    assert sorted(iids) == list(range(1, 251)) and len(iids) == 250
    queries = issue_queries(sim)
    assert len(queries) == 3 and all("pagination=keyset" in q and "&page=" not in f"&{q}" for q in queries)
    assert "cursor=" not in queries[0] and all("cursor=" in q for q in queries[1:])
    assert sorted(mrs) == list(range(1, 31))
    mr_queries = [e["query"] for e in sim.control.log() if e["path"].endswith("/merge_requests")]
    assert mr_queries and all("keyset" not in q for q in mr_queries)  # GitLab has no MR cursor pages


async def test_a_405_falls_back_to_offset_and_is_remembered(sim: SimServer) -> None:
    sim.control.set_option("keyset_issues", False)  # a GitLab before 18.3
    async with sim_client(sim) as c:
        first = [f.item.iid async for page in c.iter_issues(1) for f in page]
        after = "2024-03-01T00:00:00.000Z"
        second = [f.item.iid async for page in c.iter_issues(1, updated_after=after) for f in page]
    assert sorted(first) == list(range(1, 251)) and second
    statuses = [e["status"] for e in sim.control.log() if e["path"].endswith("/projects/1/issues")]
    queries = issue_queries(sim)
    assert statuses[0] == 405 and "keyset" in queries[0]
    assert all("keyset" not in q and "&page=" in f"&{q}" for q in queries[1:])  # asked once per client


async def test_an_issue_edited_mid_walk_is_not_skipped_by_cursor_pages(sim: SimServer) -> None:
    """Offset pages over ``updated_at`` shift under an edit and skip an item (API-NOTES §5.2, §5.12);
    cursor pages do not. Fetching the second page bumps an issue of the first one."""
    for keyset in (True, False):
        oldest = httpx.get(
            f"{sim.base_url}/api/v4/projects/1/issues",
            params={"order_by": "updated_at", "sort": "asc", "per_page": 1},
            headers={"PRIVATE-TOKEN": sim.token},
        ).json()[0]["iid"]
        mutation = {"op": "bump_issue", "project": "group/project", "iid": oldest}
        sim.control.set_option("keyset_issues", keyset)
        # Pass the first page (and, without keyset, the 405 before it), then bump on the second.
        for _ in range(1 if keyset else 2):
            sim.control.add_fault(r"/projects/1/issues$", times=1)
        sim.control.add_fault(r"/projects/1/issues$", times=1, mutation=mutation)
        async with sim_client(sim) as c:
            seen = {f.item.iid async for page in c.iter_issues(1) for f in page}
        if keyset:
            assert seen == set(range(1, 251))
        else:
            assert len(seen) == 249  # the offset walk lost one issue: what cursor pages prevent


async def test_a_full_page_without_link_or_headers_continues_by_offset() -> None:
    """No Link and no X-* headers is the last cursor page *or* an offset page a proxy stripped:
    offset page 2 settles it (empty in the first case)."""

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        return page_response([issue(i) for i in range((page - 1) * 100 + 1, min(page * 100, 230) + 1)])

    script = Script().on(ISSUES, serve)
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as c:
        iids = [f.item.iid async for page in c.iter_issues(7) for f in page]
    assert iids == list(range(1, 231))
    params = [dict(r.url.params) for r in script.requests]
    assert params[0]["pagination"] == "keyset" and "page" not in params[0]
    assert [p.get("page") for p in params[1:]] == ["2", "3"]
    assert all("pagination" not in p for p in params[1:])


async def test_cursor_links_are_checked() -> None:
    def stuck(request: httpx.Request) -> httpx.Response:
        same = f'<{BASE}{ISSUES}?pagination=keyset&cursor=abc>; rel="next"'
        return page_response([issue(1)], {"Link": same})

    script = Script().on(ISSUES, stuck)
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as c:
        with pytest.raises(GitLabBadResponseError, match="same cursor"):
            [f async for page in c.iter_issues(7) for f in page]
    assert len(script.requests) == 2  # followed once, then refused instead of looping
    elsewhere = '<https://evil.example.com/api/v4/projects/7/issues?cursor=x>; rel="next"'
    script = Script().on(ISSUES, page_response([issue(1)], {"Link": elsewhere}))
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as c:
        with pytest.raises(GitLabRequestError, match="outside the configured GitLab"):
            [f async for page in c.iter_issues(7) for f in page]
    assert {r.url.host for r in script.requests} == {"gitlab.example.com"}
