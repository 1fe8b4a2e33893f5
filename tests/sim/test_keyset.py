"""Keyset pagination of project issues (GitLab >= 18.3): cursor pages, Link only, stable under edits."""

from __future__ import annotations

from typing import Any

import httpx

from lore_daemon.sim import SimServer

KEYSET = {"pagination": "keyset", "order_by": "updated_at", "sort": "asc", "per_page": 7}


def _walk(api: httpx.Client, params: dict[str, Any], on_page: Any = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    resp = api.get("/projects/1/issues", params=params)
    while True:
        assert resp.status_code == 200
        assert not {"x-page", "x-next-page", "x-total", "x-per-page"} & set(resp.headers)
        items += resp.json()
        if on_page is not None:
            on_page(len(items))
        nxt = resp.links.get("next", {}).get("url")
        if not nxt:
            return items
        assert "cursor=" in nxt and "private_token" not in nxt
        resp = api.get(nxt)


def test_keyset_walk_returns_the_offset_order(api: httpx.Client) -> None:
    walked = _walk(api, KEYSET)
    offset = api.get("/projects/1/issues", params={"order_by": "updated_at", "sort": "asc", "per_page": 100})
    assert [i["id"] for i in walked] == [i["id"] for i in offset.json()]
    assert len(walked) == 60 and len(api.get("/projects/1/issues", params=KEYSET).json()) == 7


def test_keyset_keeps_filters_and_ties(api: httpx.Client) -> None:
    params = {**KEYSET, "state": "closed", "updated_after": "2024-06-01T00:00:00.000Z"}
    walked = _walk(api, params)
    offset = api.get("/projects/1/issues", params={**params, "pagination": "", "per_page": 100}).json()
    assert [i["iid"] for i in walked] == [i["iid"] for i in offset] and walked
    assert all(i["state"] == "closed" for i in walked)
    desc = _walk(api, {**KEYSET, "sort": "desc", "order_by": "created_at"})
    assert [i["iid"] for i in desc] == list(range(60, 0, -1))


def test_an_item_edited_mid_walk_is_neither_skipped_nor_repeated(sim: SimServer, api: httpx.Client) -> None:
    """Offset pagination over updated_at skips an item bumped mid-walk (API-NOTES §5.2); keyset
    moves it behind the cursor, so the walk meets it once, at the end."""
    first_page = api.get("/projects/1/issues", params=KEYSET).json()

    def bump_a_listed_one(count: int) -> None:
        if count == 14:  # after the second page: move an item of the first page to the end
            sim.control.mutate("bump_issue", project=1, iid=first_page[0]["iid"])

    walked = _walk(api, KEYSET, bump_a_listed_one)
    ids = [i["id"] for i in walked]
    assert len(ids) == 61 and len(set(ids)) == 60  # every issue; the bumped one again at the end
    assert walked[-1]["iid"] == first_page[0]["iid"]


def test_a_bad_cursor_is_a_400(api: httpx.Client) -> None:
    resp = api.get("/projects/1/issues", params={**KEYSET, "cursor": "not-a-cursor"})
    assert resp.status_code == 400 and resp.json() == {"error": "cursor is invalid"}
