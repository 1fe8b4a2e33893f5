"""GitLab's clock and what it decides: the Date header, ThrottledTouch, late commits (API-NOTES §5.5, §5b)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim import SimServer
from lore_daemon.timeutil import iso_to_ms

P = "group/project"


def _date_ms(resp: httpx.Response) -> int:
    return int(email.utils.parsedate_to_datetime(resp.headers["date"]).timestamp() * 1000)


def test_every_response_has_a_date_header_on_the_simulators_clock(sim: SimServer, api: httpx.Client) -> None:
    before = time.time() * 1000
    for resp in (api.get("/user"), api.get("/projects/1/issues"), api.get("/projects/1/issues/99999")):
        assert abs(_date_ms(resp) - before) < 5_000, resp.headers["date"]
    assert httpx.get(f"{sim.base_url}/_sim/health").headers["date"]
    moved = sim.control.advance_clock(3_600_000)
    assert moved["offset_ms"] == 3_600_000 and moved["date"].endswith(" GMT")
    later = _date_ms(api.get("/user"))
    assert 3_590_000 < later - before < 3_610_000
    assert abs(iso_to_ms(moved["now"]) - later) < 2_000
    with pytest.raises(InvalidParamsError, match="only moves forward"):
        sim.control.advance_clock(-1)


def test_mutations_are_stamped_from_the_clock(sim: SimServer, api: httpx.Client) -> None:
    sim.control.advance_clock(86_400_000)
    now = sim.control.clock()["now_ms"]
    bumped = sim.control.mutate("bump_issue", project=P, iid=3)
    assert 0 <= iso_to_ms(bumped["updated_at"]) - now < 5_000
    resp = api.get("/projects/1/issues/3")
    assert resp.json()["updated_at"] == bumped["updated_at"]
    assert abs(_date_ms(resp) - iso_to_ms(bumped["updated_at"])) < 2_000  # Date is GitLab's now


def test_a_note_within_a_minute_of_the_last_update_does_not_touch_the_parent(
    sim: SimServer, api: httpx.Client
) -> None:
    bumped = sim.control.mutate("bump_issue", project=P, iid=4)["updated_at"]
    sim.control.advance_clock(30_000)
    note = sim.control.mutate("add_note", project=P, kind="issue", iid=4, body="throttled")
    issue = api.get("/projects/1/issues/4").json()
    assert note["touched"] is False and issue["updated_at"] == bumped  # ThrottledTouch: not moved
    assert iso_to_ms(note["created_at"]) - iso_to_ms(bumped) >= 30_000  # the note has its own time
    assert api.get("/projects/1/issues", params={"updated_after": note["created_at"]}).json() == []
    last = api.get("/projects/1/issues/4/discussions", params={"per_page": 100}).json()[-1]["notes"][0]
    assert last["body"] == "throttled" and last["created_at"] == note["created_at"]
    sim.control.advance_clock(31_000)  # now more than a minute after the last touch
    second = sim.control.mutate("add_note", project=P, kind="issue", iid=4, body="touches")
    assert second["touched"] is True
    moved = api.get("/projects/1/issues/4").json()["updated_at"]
    assert moved == second["created_at"] == second["updated_at"]


def test_a_label_change_is_throttled_too_and_attribute_saves_never_are(
    sim: SimServer, api: httpx.Client
) -> None:
    first = sim.control.mutate("add_label", project=P, kind="mr", iid=2, label="security")
    assert first["touched"] is True  # seeded data is far older than a minute
    again = sim.control.mutate("add_label", project=P, kind="mr", iid=2, label="ux")
    mr = api.get("/projects/1/merge_requests/2").json()
    assert again["touched"] is False and mr["updated_at"] == first["updated_at"]
    assert {"security", "ux"} <= set(mr["labels"])  # the change is visible, updated_at is not
    event = api.get("/projects/1/merge_requests/2/resource_label_events", params={"per_page": 100}).json()[-1]
    assert event["label"]["name"] == "ux" and event["created_at"] > mr["updated_at"]
    bumped = sim.control.mutate("bump_mr", project=P, iid=2)  # an attribute save: always
    assert bumped["updated_at"] > first["updated_at"]
    closed = sim.control.mutate("close_issue", project=P, iid=2)
    assert sim.control.mutate("reopen_issue", project=P, iid=2)["updated_at"] > closed["updated_at"]


def test_deleting_a_note_never_touches_the_parent(sim: SimServer, api: httpx.Client) -> None:
    before = api.get("/projects/1/issues/7").json()  # iid 7 is hot: notes on two pages
    threads = api.get("/projects/1/issues/7/discussions", params={"per_page": 100}).json()
    victim = next(n for d in threads for n in d["notes"] if not n["system"])
    sim.control.advance_clock(600_000)
    result = sim.control.mutate("delete_note", project=P, kind="issue", iid=7, note_id=victim["id"])
    after = api.get("/projects/1/issues/7").json()
    assert result["touched"] is False and after["updated_at"] == before["updated_at"]
    assert after["user_notes_count"] == before["user_notes_count"] - 1
    remaining = api.get("/projects/1/issues/7/discussions", params={"per_page": 100}).json()
    assert victim["id"] not in {n["id"] for d in remaining for n in d["notes"]}
    with pytest.raises(InvalidParamsError, match="has no note"):
        sim.control.mutate("delete_note", project=P, kind="issue", iid=7, note_id=victim["id"])


def test_late_commit_appears_behind_items_already_listed(sim: SimServer, api: httpx.Client) -> None:
    sim.control.advance_clock(120_000)
    newest = sim.control.mutate("bump_issue", project=P, iid=10)["updated_at"]
    listed = api.get("/projects/1/issues", params={"order_by": "updated_at", "sort": "asc",
                                                  "updated_after": newest}).json()
    assert [i["iid"] for i in listed] == [10]  # a sync would now hold a cursor at `newest`
    late = sim.control.mutate("late_commit", project=P, kind="issue", iid=11, lag_ms=2_000)
    assert late["late"] is True and late["updated_at"] < newest
    assert api.get("/projects/1/issues", params={"updated_after": newest}).json()[0]["iid"] == 10
    rewound = api.get("/projects/1/issues", params={"order_by": "updated_at", "sort": "asc",
                                                   "updated_after": late["updated_at"]}).json()
    assert [i["iid"] for i in rewound] == [11, 10]  # only a rewound window sees it
    created = sim.control.mutate("late_commit", project=P, kind="issue", lag_ms=1_000)
    assert created["iid"] == 61 and created["late"] is True
    issue = api.get("/projects/1/issues/61").json()
    assert issue["created_at"] == issue["updated_at"] == created["updated_at"] and issue["state"] == "opened"
    with pytest.raises(InvalidParamsError, match="smaller lag_ms"):
        sim.control.mutate("late_commit", project=P, kind="issue", iid=10, lag_ms=5_000)


def test_create_adds_an_entity_to_lists_totals_and_the_dump(sim: SimServer, api: httpx.Client) -> None:
    made = sim.control.mutate("create", project=P, kind="mr")
    assert made["iid"] == 21 and made["state"] == "opened"
    listed = api.get("/projects/1/merge_requests", params={"order_by": "updated_at", "per_page": 1})
    assert listed.json()[0]["iid"] == 21 and listed.headers["x-total"] == "21"
    assert api.get("/projects/1/merge_requests/21/discussions").json() == []  # a brand-new MR
    assert [m["iid"] for m in sim.control.dump(P)["merge_requests"]][-1] == 21
