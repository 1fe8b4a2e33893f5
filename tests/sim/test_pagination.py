"""Offset pagination exactly as API-NOTES §1.10 describes it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lore_daemon.sim import SimConfig, SimServer

PAGING = ("x-per-page", "x-page", "x-next-page", "x-prev-page", "x-total", "x-total-pages", "link")


def paging(resp: httpx.Response) -> dict[str, str]:
    return {k: resp.headers[k] for k in PAGING if k in resp.headers}


def test_first_middle_and_last_page_headers(sim: SimServer, api: httpx.Client) -> None:
    base = f"{sim.base_url}/api/v4/projects/1/issues"
    first = api.get("/projects/1/issues", params={"per_page": 25})
    assert paging(first) == {
        "x-per-page": "25",
        "x-page": "1",
        "x-next-page": "2",
        "x-prev-page": "",
        "x-total": "60",
        "x-total-pages": "3",
        "link": f'<{base}?page=2&per_page=25>; rel="next", <{base}?page=1&per_page=25>; rel="first", '
        f'<{base}?page=3&per_page=25>; rel="last"',
    }
    middle = api.get("/projects/1/issues", params={"per_page": 25, "page": 2})
    assert paging(middle)["link"] == (
        f'<{base}?page=1&per_page=25>; rel="prev", <{base}?page=3&per_page=25>; rel="next", '
        f'<{base}?page=1&per_page=25>; rel="first", <{base}?page=3&per_page=25>; rel="last"'
    )
    last = api.get("/projects/1/issues", params={"per_page": 25, "page": 3})
    assert len(last.json()) == 10
    assert paging(last)["x-next-page"] == "" and paging(last)["x-prev-page"] == "2"
    assert 'rel="next"' not in paging(last)["link"]


def test_link_urls_keep_every_param_sorted_and_re_encoded(sim: SimServer, api: httpx.Client) -> None:
    resp = api.get(
        "/projects/group%2Fproject/issues?sort=asc&updated_after=2024-01-01T00:00:00.000Z&iids[]=3&iids[]=1"
        "&order_by=updated_at&per_page=1&private_token=x-never-echoed"
    )
    nxt = resp.headers["link"].split(", ")[0]
    assert nxt == (
        f"<{sim.base_url}/api/v4/projects/group%2Fproject/issues?iids%5B%5D=3&iids%5B%5D=1&order_by=updated_at"
        '&page=2&per_page=1&sort=asc&updated_after=2024-01-01T00%3A00%3A00.000Z>; rel="next"'
    )
    following = api.get(nxt[1 : nxt.index(">")])
    assert sorted([resp.json()[0]["iid"], following.json()[0]["iid"]]) == [1, 3]
    assert following.headers["x-next-page"] == ""


def test_per_page_is_capped_at_100_and_defaults_to_20(api: httpx.Client) -> None:
    default = api.get("/projects/1/issues")
    assert default.headers["x-per-page"] == "20" and len(default.json()) == 20
    capped = api.get("/projects/1/issues", params={"per_page": 250})
    assert capped.headers["x-per-page"] == "100" and len(capped.json()) == 60
    assert capped.headers["x-total-pages"] == "1" and capped.headers["x-next-page"] == ""


def test_page_past_the_end_is_an_empty_200(api: httpx.Client) -> None:
    resp = api.get("/projects/1/issues", params={"per_page": 50, "page": 9})
    assert resp.status_code == 200 and resp.json() == []
    assert resp.headers["x-next-page"] == "" and resp.headers["x-total"] == "60"


def test_empty_list_reports_one_total_page(api: httpx.Client) -> None:
    resp = api.get("/projects/1/issues", params={"updated_after": "2030-01-01T00:00:00Z"})
    assert resp.json() == []
    assert resp.headers["x-total"] == "0" and resp.headers["x-total-pages"] == "1"


KEYSET_405 = {"error": "Keyset pagination is not yet available for this type of request"}


def test_keyset_pagination_is_refused_with_405_where_gitlab_has_none(
    sim: SimServer, api: httpx.Client
) -> None:
    keyset = {"pagination": "keyset", "order_by": "updated_at"}
    for path in ("merge_requests", "issues/7/discussions", "merge_requests/3/closes_issues"):
        resp = api.get(f"/projects/1/{path}", params=keyset)
        assert (resp.status_code, resp.json()) == (405, KEYSET_405), path
    sim.control.set_option("keyset_issues", False)  # a GitLab older than 18.3
    resp = api.get("/projects/1/issues", params=keyset)
    assert (resp.status_code, resp.json()) == (405, KEYSET_405)


def test_dependents_paginate_too(api: httpx.Client) -> None:
    resp = api.get("/projects/1/issues/7/discussions")  # a hot entity: more than one page
    assert resp.headers["x-next-page"] == "2" and len(resp.json()) == 20
    total = int(resp.headers["x-total"])
    second = api.get("/projects/1/issues/7/discussions", params={"page": 2})
    assert len(second.json()) == total - 20 and second.headers["x-next-page"] == ""


@pytest.fixture
def big() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=5, issues=120, mrs=3, notes_per_entity=1, total_threshold=100)) as server:
        yield server


def test_totals_and_rel_last_are_omitted_above_the_threshold(big: SimServer) -> None:
    with httpx.Client(base_url=f"{big.base_url}/api/v4", headers={"PRIVATE-TOKEN": big.token}) as api:
        resp = api.get("/projects/1/issues", params={"per_page": 50})
        headers = paging(resp)
        assert "x-total" not in headers and "x-total-pages" not in headers
        assert 'rel="last"' not in headers["link"] and 'rel="next"' in headers["link"]
        assert headers["x-next-page"] == "2"
        last = api.get("/projects/1/issues", params={"per_page": 50, "page": 3})
        assert len(last.json()) == 20 and last.headers["x-next-page"] == ""
        # At or below the threshold the totals come back.
        small = api.get("/projects/1/issues", params={"per_page": 50, "state": "closed"})
        assert int(small.headers["x-total"]) == sum(
            1
            for p in (1, 2, 3)
            for i in api.get("/projects/1/issues", params={"per_page": 50, "page": p}).json()
            if i["state"] == "closed"
        )


def test_omit_next_page_header_drops_next_page_and_link(sim: SimServer, api: httpx.Client) -> None:
    sim.control.set_option("omit_next_page_header", True)
    resp = api.get("/projects/1/issues", params={"per_page": 20})
    assert "x-next-page" not in resp.headers and "link" not in resp.headers
    assert resp.headers["x-page"] == "1" and resp.headers["x-total"] == "60"
    sim.control.set_option("omit_next_page_header", False)
    assert api.get("/projects/1/issues").headers["x-next-page"] == "2"


def test_walking_next_pages_yields_every_issue_once(api: httpx.Client) -> None:
    seen: list[int] = []
    page = "1"
    while page:
        resp = api.get(
            "/projects/1/issues",
            params={"per_page": 7, "page": page, "order_by": "updated_at", "sort": "asc"},
        )
        seen += [i["iid"] for i in resp.json()]
        page = resp.headers["x-next-page"]
    assert sorted(seen) == list(range(1, 61))


def test_bad_page_parameters_answer_grape_errors(api: httpx.Client) -> None:
    assert api.get("/projects/1/issues", params={"page": "two"}).json() == {"error": "page is invalid"}
    assert api.get("/projects/1/issues", params={"per_page": "x"}).status_code == 400
