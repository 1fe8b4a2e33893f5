"""``ingest_group`` applies the one decision (``entities.decide``) and writes a page exactly as
``ingest_issue``/``ingest_merge_request`` do item by item: the same outcomes and, table by table,
the same rows. Two databases, one per path, fed the same pages round after round (new, changed,
retitled, unchanged and stale items; users and milestones shared between items with differing
details; labels and people coming and going)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from lore_daemon.gitlab.models import Fetched
from lore_daemon.store import migrate, open_connection
from lore_daemon.store.dependents import replace_discussions
from lore_daemon.store.entities import (
    Decision,
    IngestOutcome,
    LocalEntityState,
    decide,
    ingest_issue,
    ingest_merge_request,
    upsert_project,
)
from lore_daemon.store.entity_sql import ISSUE_SQL, MR_SQL, IssueRow, MrRow
from lore_daemon.store.ingest_group import ingest_group
from tests.store.conftest import T0, Payloads, user

NOW = T0 + 10_000_000
LABELS = ["bug", "ui", "backend", "docs", "p1", "p2"]


def _database(path: Path, gl: Payloads) -> apsw.Connection:
    conn = open_connection(path)
    migrate(conn)
    with conn:
        upsert_project(conn, gl.project(), now_ms=T0)
    return conn


@pytest.fixture
def pair(tmp_path: Path, gl: Payloads) -> Iterator[tuple[apsw.Connection, apsw.Connection]]:
    grouped, one_by_one = _database(tmp_path / "grouped.db", gl), _database(tmp_path / "items.db", gl)
    yield grouped, one_by_one
    grouped.close()
    one_by_one.close()


def _dump(conn: apsw.Connection) -> dict[str, list[str]]:
    """Every row of every table (shadow tables included; not the migration ledger, whose
    timestamps are each file's own), order-independent."""
    tables = [
        str(name)
        for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        if not str(name).startswith("sqlite_") and name != "schema_migrations"
    ]
    return {
        table: sorted(repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))
        for table in tables
    }


def _person(rng: random.Random) -> dict[str, Any]:
    uid = rng.randint(1, 6)
    person = user(uid)
    person["name"] = rng.choice([None, f"Name {uid}", f"Renamed {uid}"])  # coalesce merges in order
    return person


def _fields(rng: random.Random, mr: bool) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "title": rng.choice(["Alpha", "Beta", "Gamma"]),
        "web_url": rng.choice(["https://gitlab.example.com/a", "https://gitlab.example.com/moved/a"]),
        "labels": rng.sample(LABELS, rng.randint(0, 3)),
        "assignees": [_person(rng) for _ in range(rng.randint(0, 2))],
        "author": _person(rng),
        "milestone": rng.choice([
            None,
            {"id": 9, "iid": 1, "project_id": 100, "title": rng.choice(["v1", "v1.1"]), "state": "active",
             "due_date": None, "web_url": None},
        ]),
    }
    if mr:
        extra["reviewers"] = [_person(rng) for _ in range(rng.randint(0, 2))]
    return extra


def _page(rng: random.Random, gl: Payloads, mr: bool, versions: dict[int, int]) -> list[Fetched[Any]]:
    """A page of distinct iids: new ones, and known ones moved forward, resent as is, or older."""
    page = []
    for iid in rng.sample(range(1, 40), 12):
        known = versions.get(iid)
        if known is None:
            updated = T0 + rng.randint(0, 1000) * 1000
        else:
            updated = known + rng.choice([-60_000, 0, 0, 60_000, 120_000])  # stale, same, newer
        if updated != known or rng.random() < 0.5:
            versions[iid] = max(updated, known or updated)
        rng_item = random.Random(f"{iid}-{updated}")  # same version -> same bytes (unchanged)
        fields = _fields(rng_item, mr)
        make = gl.mr if mr else gl.issue
        page.append(make(iid, updated_ms=updated, **fields))
    return page


def _ingest_one_by_one(
    conn: apsw.Connection, mr: bool, page: list[Fetched[Any]], now: int
) -> list[IngestOutcome]:
    ingest: Callable[..., IngestOutcome] = ingest_merge_request if mr else ingest_issue
    return [ingest(conn, 100, fetched, now_ms=now) for fetched in page]


def _add_discussions(conn: apsw.Connection, gl: Payloads, mr: bool, page: list[Fetched[Any]]) -> None:
    """Threads on some parents, so a retitled parent must dirty its discussions too."""
    for fetched in page[::3]:
        thread = gl.discussion(f"d{fetched.item.id}", gl.note(fetched.item.id * 10))
        replace_discussions(
            conn, project_id=100, parent_kind="mr" if mr else "issue", parent_id=fetched.item.id,
            discussions=[thread], now_ms=NOW,
        )


@pytest.mark.parametrize("mr", [False, True], ids=["issues", "merge_requests"])
@pytest.mark.parametrize("seed", range(6))
def test_a_page_at_once_equals_item_by_item(
    pair: tuple[apsw.Connection, apsw.Connection], gl: Payloads, mr: bool, seed: int
) -> None:
    grouped, one_by_one = pair
    rng = random.Random(seed)
    versions: dict[int, int] = {}
    seen: set[str] = set()
    for round_ in range(5):
        page = _page(rng, gl, mr, versions)
        with grouped:
            at_once = ingest_group(grouped, "mr" if mr else "issue", 100, page, now_ms=NOW + round_)
        with one_by_one:
            items = _ingest_one_by_one(one_by_one, mr, page, NOW + round_)
        assert at_once == items
        seen.update(outcome.status for outcome in items)
        assert _dump(grouped) == _dump(one_by_one)
        if round_ == 0:
            for conn in pair:
                with conn:
                    _add_discussions(conn, gl, mr, page)
    assert seen == {"ingested", "unchanged", "skipped_stale"}  # every rule was exercised


def test_retitled_parent_dirties_its_discussions(
    pair: tuple[apsw.Connection, apsw.Connection], gl: Payloads
) -> None:
    grouped, _ = pair
    with grouped:
        ingest_group(grouped, "issue", 100, [gl.issue(1), gl.issue(2)], now_ms=NOW)
        _add_discussions(grouped, gl, False, [gl.issue(1)])
        [first, second] = ingest_group(
            grouped, "issue", 100,
            [gl.issue(1, updated_ms=T0 + 1, title="New"), gl.issue(2, updated_ms=T0 + 1)], now_ms=NOW,
        ) or []
    discussion_id = grouped.execute("SELECT id FROM discussions").fetchone()[0]
    assert first.touched == {("issue", 10_001), ("discussion", discussion_id)}
    assert second.touched == {("issue", 10_002)}


@pytest.mark.parametrize(
    "case",
    ["id listed twice", "iid listed twice", "iid held by a deleted-and-recreated entity"],
)
def test_pages_it_does_not_take_write_nothing(
    pair: tuple[apsw.Connection, apsw.Connection], gl: Payloads, case: str
) -> None:
    grouped, _ = pair
    with grouped:
        ingest_group(grouped, "issue", 100, [gl.issue(1), gl.issue(2)], now_ms=NOW)
    before = _dump(grouped)
    if case == "id listed twice":
        page = [gl.issue(3), gl.issue(3, updated_ms=T0 + 5)]
    elif case == "iid listed twice":
        page = [gl.issue(3), gl.issue(3, id=99_999)]
    else:
        page = [gl.issue(4), gl.issue(2, id=99_999)]  # iid 2 under a new GitLab id
    with grouped:
        assert ingest_group(grouped, "issue", 100, page, now_ms=NOW + 1) is None
    assert _dump(grouped) == before


def _local(updated: int, seen: int, sha: str | None, **marks: int | None) -> LocalEntityState:
    return LocalEntityState(
        kind="issue", iid=1, gitlab_id=10_001, title="t", web_url="u", updated_at_ms=updated,
        last_seen_at_ms=seen, raw_sha256=sha, raw_payload_id=5, watermarks=dict(marks),
    )


def test_the_one_decision_both_writers_apply() -> None:
    """``decide`` is the ingest rules: stale writes nothing, same bytes only enqueue what is behind,
    anything else is written (with the jobs behind the payload's updated_at)."""
    assert decide("issue", None, 100, "a", None) == Decision("ingested", ("discussions", "resource_events"))
    newer = _local(200, 0, "a", discussions=200, events=200)
    assert decide("issue", newer, 100, "b", None) == Decision("skipped_stale", ())
    same = _local(100, 50, "a", discussions=100, events=None)
    assert decide("issue", same, 100, "a", None) == Decision("unchanged", ("resource_events",))
    assert decide("issue", same, 100, "a", 40) == Decision("skipped_stale", ())  # re-fetched after the guard
    assert decide("issue", same, 100, "a", 60) == Decision("unchanged", ("resource_events",))
    assert decide("issue", same, 100, "b", None).status == "ingested"


def test_rows_are_named_after_the_columns_they_fill(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "cols.db")
    migrate(conn)
    for row, sql in ((IssueRow, ISSUE_SQL), (MrRow, MR_SQL)):
        columns = {r[1] for r in conn.execute(f"PRAGMA table_info({sql.local.table})")}
        assert set(row._fields) <= columns and sql.upsert.columns == row._fields
    conn.close()
