"""List filters and ordering: inclusive date bounds, ``id DESC`` tie-break, state and iids filters."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from lore_daemon.timeutil import iso_to_ms, ms_to_iso


def everything(api: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = "1"
    while page:
        resp = api.get(path, params={**params, "per_page": 100, "page": page})
        assert resp.status_code == 200, resp.text
        items += resp.json()
        page = resp.headers["x-next-page"]
    return items


def test_updated_after_and_before_are_inclusive(api: httpx.Client) -> None:
    issues = everything(api, "/projects/1/issues")
    pivot = sorted(issues, key=lambda i: i["updated_at"])[30]["updated_at"]
    after = everything(api, "/projects/1/issues", updated_after=pivot)
    assert {i["iid"] for i in after} == {i["iid"] for i in issues if i["updated_at"] >= pivot}
    assert pivot in {i["updated_at"] for i in after}
    before = everything(api, "/projects/1/issues", updated_before=pivot)
    assert {i["iid"] for i in before} == {i["iid"] for i in issues if i["updated_at"] <= pivot}
    one_ms_later = ms_to_iso(iso_to_ms(pivot) + 1)
    assert pivot not in {
        i["updated_at"] for i in everything(api, "/projects/1/issues", updated_after=one_ms_later)
    }


def test_offsets_in_query_times_are_honoured(api: httpx.Client) -> None:
    issues = everything(api, "/projects/1/issues")
    pivot = sorted(issues, key=lambda i: i["updated_at"])[10]["updated_at"]
    in_cest = (iso_to_ms(pivot) + 2 * 3_600_000) / 1000
    from datetime import UTC, datetime, timedelta, timezone

    local = datetime.fromtimestamp(in_cest, tz=UTC).astimezone(timezone(timedelta(hours=2)))
    text = local.isoformat(timespec="milliseconds")  # ...+02:00, sent as %2B by httpx
    shifted = everything(api, "/projects/1/issues", updated_after=text)
    assert min(i["updated_at"] for i in shifted) >= ms_to_iso(iso_to_ms(pivot) + 2 * 3_600_000)
    assert api.get("/projects/1/issues?updated_after=2024-01-01T00:00:00.000+02:00").json() == {
        "error": "updated_after is invalid"  # an unencoded '+' arrives as a space
    }


def test_ties_on_updated_at_break_by_id_desc_in_both_directions(api: httpx.Client) -> None:
    asc = everything(api, "/projects/1/issues", order_by="updated_at", sort="asc")
    desc = everything(api, "/projects/1/issues", order_by="updated_at", sort="desc")
    groups = Counter(i["updated_at"] for i in asc)
    tied = [stamp for stamp, n in groups.items() if n > 1]
    assert tied, "the data set has issues sharing an exact updated_at"
    for ordered, reverse in ((asc, False), (desc, True)):
        keys = [(i["updated_at"], i["id"]) for i in ordered]
        assert [k[0] for k in keys] == sorted((k[0] for k in keys), reverse=reverse)
        for stamp in tied:
            ids = [i["id"] for i in ordered if i["updated_at"] == stamp]
            assert ids == sorted(ids, reverse=True), "id DESC within a tie, even for sort=asc"


def test_default_order_is_created_at_desc(api: httpx.Client) -> None:
    items = everything(api, "/projects/1/merge_requests")
    assert [m["created_at"] for m in items] == sorted((m["created_at"] for m in items), reverse=True)
    asc = everything(api, "/projects/1/merge_requests", order_by="created_at", sort="asc")
    assert [m["iid"] for m in asc] == list(range(1, 21))  # iids rise with creation time


def test_state_and_iids_filters(api: httpx.Client) -> None:
    issues = everything(api, "/projects/1/issues")
    closed = everything(api, "/projects/1/issues", state="closed")
    assert closed and all(i["state"] == "closed" for i in closed)
    assert len(closed) + len(everything(api, "/projects/1/issues", state="opened")) == len(issues)
    assert all(i["closed_at"] for i in closed)
    merged = everything(api, "/projects/1/merge_requests", state="merged")
    assert merged and all(m["merged_at"] and m["merged_by"] for m in merged)
    picked = api.get("/projects/1/issues?iids[]=4&iids[]=9&iids[]=9999").json()
    assert sorted(i["iid"] for i in picked) == [4, 9]


def test_created_filters_combine_with_updated_order(api: httpx.Client) -> None:
    issues = everything(api, "/projects/1/issues")
    pivot = sorted(i["created_at"] for i in issues)[20]
    got = everything(api, "/projects/1/issues", created_after=pivot, order_by="updated_at", sort="asc")
    assert {i["iid"] for i in got} == {i["iid"] for i in issues if i["created_at"] >= pivot}


def test_invalid_list_params_answer_grape_400s(api: httpx.Client) -> None:
    assert api.get("/projects/1/issues", params={"order_by": "bogus"}).json() == {
        "error": "order_by does not have a valid value"
    }
    assert api.get("/projects/1/issues", params={"sort": "up"}).json() == {
        "error": "sort does not have a valid value"
    }
    assert api.get("/projects/1/issues", params={"state": "merged"}).status_code == 400
    assert api.get("/projects/1/merge_requests", params={"state": "merged"}).status_code == 200
    assert api.get("/projects/1/issues", params={"updated_after": "yesterday"}).json() == {
        "error": "updated_after is invalid"
    }
