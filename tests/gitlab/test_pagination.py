"""Page walking: X-Next-Page, Link rel=next, full-page fallback, and never trusting totals.

Offset rules are walked through the MR listing (offset pages only); issues ask for cursor pages
first, which ``test_keyset.py`` covers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lore_daemon.errors import GitLabBadResponseError, GitLabRequestError
from lore_daemon.gitlab import GitLabClient
from lore_daemon.gitlab._pagination import next_page_url
from lore_daemon.gitlab._urls import parse_origin

from .support import BASE, FAST, TOKEN, Script, issue, page_response

ISSUES = "/api/v4/projects/7/merge_requests"  # an offset-paginated listing
ORIGIN = parse_origin(BASE)
assert ORIGIN is not None
REQ = httpx.URL(BASE + ISSUES, params={"per_page": "100", "page": "3", "sort": "asc"})


def nxt(headers: dict[str, str], count: int = 100) -> httpx.URL | None:
    assert ORIGIN is not None
    return next_page_url(
        headers=httpx.Headers(headers),
        request_url=REQ,
        count=count,
        per_page=100,
        origin=ORIGIN,
        what="GET x",
    )


def test_next_page_rules() -> None:
    assert nxt({"X-Next-Page": "4"}) == REQ.copy_set_param("page", 4)
    assert nxt({"X-Next-Page": ""}) is None  # GitLab's explicit "last page", even when full
    assert nxt({"X-Next-Page": "4"}, count=0) is None  # empty page always ends the walk
    assert nxt({}, count=100) == REQ.copy_set_param("page", 4)  # full page, no headers: ask anyway
    assert nxt({}, count=99) is None  # short page ends the walk
    assert nxt({"X-Per-Page": "50"}, count=50) == REQ.copy_set_param("page", 4)  # server-capped per_page
    link = f'<{BASE}{ISSUES}?page=4&per_page=100&sort=asc>; rel="next", <{BASE}{ISSUES}?page=1>; rel="first"'
    assert nxt({"Link": link}, count=3) == httpx.URL(f"{BASE}{ISSUES}?page=4&per_page=100&sort=asc")
    assert nxt({"Link": f'<{BASE}{ISSUES}?page=1>; rel="first"'}, count=100) == REQ.copy_set_param("page", 4)


def test_x_next_page_wins_over_link() -> None:
    link = f'<{BASE}{ISSUES}?page=9>; rel="next"'
    assert nxt({"X-Next-Page": "4", "Link": link}) == REQ.copy_set_param("page", 4)


@pytest.mark.parametrize(
    "link",
    [
        'https://evil.example.com/api/v4/projects/7/issues?page=4; rel="next"',
        'http://gitlab.example.com/api/v4/projects/7/issues?page=4; rel="next"',
        'https://gitlab.example.com:8443/api/v4/projects/7/issues?page=4; rel="next"',
    ],
    ids=["host", "scheme", "port"],
)
def test_link_off_the_configured_gitlab_is_refused(link: str) -> None:
    url, rel = link.split("; ")
    with pytest.raises(GitLabRequestError) as caught:
        nxt({"Link": f"<{url}>; {rel}"})
    assert caught.value.code == "GITLAB_REQUEST_FAILED"


def test_next_page_must_move_forward() -> None:
    with pytest.raises(GitLabBadResponseError):
        nxt({"X-Next-Page": "3"})
    with pytest.raises(GitLabBadResponseError):
        nxt({"Link": f'<{BASE}{ISSUES}?page=2>; rel="next"'})


# ------------------------------------------------------------------------------ through the client


def paged_server(total: int, headers_for: Any, per_page: int = 100) -> Script:
    """Serves ``total`` issues in pages; ``headers_for(page, last_page)`` picks the headers."""
    last = max(1, -(-total // per_page))

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        start = (page - 1) * per_page
        items = [issue(i + 1) for i in range(start, min(total, start + per_page))]
        return page_response(items, headers_for(page, last))

    return Script().on(ISSUES, serve)


async def walk(script: Script, base: str = BASE) -> list[int]:
    async with GitLabClient(base, TOKEN, retry=FAST, transport=script.transport()) as client:
        return [f.item.iid async for page in client.iter_merge_requests(7) for f in page]


async def test_follows_x_next_page() -> None:
    script = paged_server(
        250, lambda p, last: {"X-Next-Page": str(p + 1) if p < last else "", "X-Total": "250"}
    )
    assert await walk(script) == list(range(1, 251))
    assert [r.url.params["page"] for r in script.requests] == ["1", "2", "3"]


async def test_follows_link_only() -> None:
    def headers(page: int, last: int) -> dict[str, str]:
        if page == last:
            return {}
        return {"Link": f'<{BASE}{ISSUES}?order_by=updated_at&page={page + 1}&per_page=100>; rel="next"'}

    script = paged_server(230, headers)
    assert await walk(script) == list(range(1, 231))
    assert [r.url.params["page"] for r in script.requests] == ["1", "2", "3"]
    assert script.requests[1].url.params["order_by"] == "updated_at"  # Link URL used as given


async def test_neither_header_keeps_asking_while_pages_are_full_and_stops_on_empty() -> None:
    script = paged_server(300, lambda p, last: {})
    assert await walk(script) == list(range(1, 301))
    assert [r.url.params["page"] for r in script.requests] == ["1", "2", "3", "4"]  # page 4 was empty


async def test_neither_header_stops_on_short_page() -> None:
    script = paged_server(250, lambda p, last: {})
    assert await walk(script) == list(range(1, 251))
    assert len(script.requests) == 3


async def test_more_than_10000_items_without_totals() -> None:
    script = paged_server(
        10_050, lambda p, last: {"X-Next-Page": str(p + 1) if p < last else "", "X-Page": str(p)}
    )
    iids = await walk(script)
    assert len(iids) == 10_050 and len(set(iids)) == 10_050
    assert len(script.requests) == 101


async def test_listing_parameters() -> None:
    script = paged_server(0, lambda p, last: {"X-Next-Page": ""})
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as client:
        after = "2024-01-01T00:00:00.000+00:00"
        pages = [page async for page in client.iter_merge_requests(7, updated_after=after)]
    assert pages == []
    params = script.requests[0].url.params
    assert dict(params) == {
        "order_by": "updated_at",
        "sort": "asc",
        "scope": "all",
        "state": "all",
        "updated_after": "2024-01-01T00:00:00.000+00:00",
        "per_page": "100",
        "page": "1",
    }
    assert b"%2B00%3A00" in script.requests[0].url.query  # '+' is sent encoded, never as a space


async def test_link_to_another_host_is_never_requested() -> None:
    evil = 'https://evil.example.com/api/v4/projects/7/issues?page=2>; rel="next"'
    script = paged_server(100, lambda p, last: {"Link": f"<{evil}"})
    with pytest.raises(GitLabRequestError):
        await walk(script)
    assert {r.url.host for r in script.requests} == {"gitlab.example.com"}


async def test_link_outside_the_base_path_is_refused() -> None:
    base = "https://gitlab.example.com/gitlab"
    outside = '<https://gitlab.example.com/gitlabx/api/v4/projects/7/issues?page=2>; rel="next"'

    def serve(request: httpx.Request) -> httpx.Response:
        return page_response([issue(1)], {"Link": outside})

    script = Script().on("/gitlab" + ISSUES, serve)
    with pytest.raises(GitLabRequestError):
        await walk(script, base)
    assert len(script.requests) == 1


async def test_dependent_lists_collect_every_page() -> None:
    path = "/api/v4/projects/7/merge_requests/3/discussions"

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        count = 100 if page < 3 else 7
        items = [{"id": f"{page:02d}{i:038d}", "individual_note": True, "notes": []} for i in range(count)]
        return page_response(items)  # no pagination headers at all

    script = Script().on(path, serve)
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as client:
        discussions = await client.list_discussions(7, "mr", 3)
    assert len(discussions) == 207 and len({d.id for d in discussions}) == 207
