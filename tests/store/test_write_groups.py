"""Units written in shared commits (``sync/batched.py``) and the ingest page built on it.

Each unit is its own savepoint; a bounded group of units shares a commit. These tests count real
commits (apsw's commit hook) on a real database file and check what survives each failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import apsw
import pytest

from lore_daemon.store import open_connection
from lore_daemon.store.cursors import read_cursor
from lore_daemon.sync import ingest_phase
from lore_daemon.sync.batched import write_in_groups
from lore_daemon.sync.context import RunCancelled, RunContext
from lore_daemon.tuning import DEFAULT_TUNING, Tuning
from tests.store.conftest import T0


@pytest.fixture
def conn(tmp_path: Path) -> apsw.Connection:
    conn = open_connection(tmp_path / "groups.db")
    conn.execute("CREATE TABLE unit (n INTEGER PRIMARY KEY, half INTEGER)")
    return conn


def _stored(conn: apsw.Connection) -> list[int]:
    return [int(row[0]) for row in conn.execute("SELECT n FROM unit ORDER BY n")]


def _count_commits(conn: apsw.Connection) -> list[int]:
    commits: list[int] = []

    def hook() -> bool:
        commits.append(1)
        return False  # let it commit

    conn.set_commit_hook(hook)
    return commits


def _write(conn: apsw.Connection, fail_at: int | None = None) -> Any:
    def write_one(n: int) -> None:
        conn.execute("INSERT INTO unit (n) VALUES (?)", (n,))
        if n == fail_at:
            conn.execute("INSERT INTO unit (n) VALUES (?)", (n + 1000,))  # a second write, rolled back too
            raise ValueError(f"unit {n} broke")
    return write_one


def test_units_share_commits_in_bounded_groups(conn: apsw.Connection) -> None:
    commits = _count_commits(conn)
    done = write_in_groups(conn, list(range(7)), _write(conn), per_transaction=3, budget_s=60)
    assert done == 7 and _stored(conn) == list(range(7))
    assert len(commits) == 3  # 3 + 3 + 1


def test_the_budget_closes_a_group_early_but_never_before_its_first_unit(conn: apsw.Connection) -> None:
    commits = _count_commits(conn)
    done = write_in_groups(conn, list(range(4)), _write(conn), per_transaction=100, budget_s=0)
    assert done == 4 and len(commits) == 4  # an exhausted budget still lets one unit through


def test_a_failing_unit_rolls_back_alone_and_the_units_before_it_commit(conn: apsw.Connection) -> None:
    committed_groups: list[int] = []
    with pytest.raises(ValueError, match="unit 4 broke"):
        write_in_groups(conn, list(range(8)), _write(conn, fail_at=4), per_transaction=3, budget_s=60,
                        on_group_committed=lambda: committed_groups.append(1))
    assert _stored(conn) == [0, 1, 2, 3]  # 0-2 (first group), 3 (before the failure); not 4, 1004
    assert len(committed_groups) == 2 and not conn.in_transaction


def test_should_stop_ends_the_loop_after_committing_what_was_done(conn: apsw.Connection) -> None:
    seen: list[int] = []

    def write_one(n: int) -> None:
        seen.append(n)
        conn.execute("INSERT INTO unit (n) VALUES (?)", (n,))

    done = write_in_groups(conn, list(range(10)), write_one, per_transaction=4, budget_s=60,
                           should_stop=lambda: len(seen) >= 6)
    assert done == 6 and _stored(conn) == list(range(6))


def test_a_failed_commit_loses_the_whole_group_and_says_so(conn: apsw.Connection) -> None:
    groups: list[str] = []
    conn.set_commit_hook(lambda: len(groups) == 1)  # veto the second commit: it becomes a rollback
    with pytest.raises(apsw.ConstraintError):
        write_in_groups(conn, list(range(6)), _write(conn), per_transaction=3, budget_s=60,
                        on_group_committed=lambda: groups.append("committed"),
                        on_group_lost=lambda: groups.append("lost"))
    assert groups == ["committed", "lost"] and _stored(conn) == [0, 1, 2]


# -- the ingest page on top of it ---------------------------------------------------------------


def _context(tuning: Tuning = DEFAULT_TUNING) -> RunContext:
    return RunContext(cast(Any, None), mode="standard", progress=lambda note: None, tuning=tuning)


def _issues(conn: apsw.Connection) -> list[int]:
    return [int(row[0]) for row in conn.execute("SELECT iid FROM issues ORDER BY iid")]


def _page(gl: Any, count: int) -> list[Any]:
    # Distinct updated_at per item, ascending: every item closes the previous item's group.
    return [gl.issue(iid, updated_ms=_at(iid)) for iid in range(1, count + 1)]


def _at(iid: int) -> int:
    return T0 + iid * 1000


def test_a_page_is_one_commit_with_the_cursor_at_its_last_complete_group(
    store_db: apsw.Connection, gl: Any
) -> None:
    commits = _count_commits(store_db)
    walk = ingest_phase.CursorWalk(None)
    out = ingest_phase._write_page(store_db, _context(), gl.project_id, "issues", _page(gl, 10), walk)
    assert (out.ingested, out.unchanged, out.skipped_stale) == (10, 0, 0)
    assert _issues(store_db) == list(range(1, 11)) and len(commits) == 1
    cursor = read_cursor(store_db, gl.project_id, "issues")
    assert cursor is not None and cursor.updated_at == _at(9)  # item 10's group closes at the end
    assert walk.group_updated == _at(10)


def test_an_ingest_page_commits_in_groups_and_a_broken_item_rolls_back_alone(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set-based path fails: its transaction rolls back whole, and the page is written item by
    item, each in its own savepoint, a few per commit; the broken item leaves nothing."""
    commits = _count_commits(store_db)
    real = ingest_phase.ingest_issue

    def breaks_on_7(conn: apsw.Connection, project_id: int, fetched: Any, **kw: Any) -> Any:
        out = real(conn, project_id, fetched, **kw)  # every write of item 7 happens, then it fails
        if fetched.item.iid == 7:
            raise RuntimeError("item 7 broke")
        return out

    monkeypatch.setattr(ingest_phase, "ingest_issue", breaks_on_7)
    real_group = ingest_phase.ingest_group

    def group_breaks(*args: Any, **kw: Any) -> Any:
        real_group(*args, **kw)  # the whole page is written, then the set-based path fails
        raise RuntimeError("the page broke")

    monkeypatch.setattr(ingest_phase, "ingest_group", group_breaks)
    walk = ingest_phase.CursorWalk(None)
    ctx = _context(Tuning(items_per_transaction=4))
    with pytest.raises(RuntimeError, match="item 7 broke"):
        ingest_phase._write_page(store_db, ctx, gl.project_id, "issues", _page(gl, 10), walk)
    assert _issues(store_db) == [1, 2, 3, 4, 5, 6] and len(commits) == 2  # 1-4, then 5-6
    # The walk is where the committed items left it: item 6 opened the last group, which item 7
    # (rolled back) would have closed. The stored cursor covers item 5's group — committed.
    assert walk.group_updated == _at(6)
    cursor = read_cursor(store_db, gl.project_id, "issues")
    assert cursor is not None and cursor.updated_at == _at(5)
    assert store_db.execute("SELECT count(*) FROM dirty_sources").fetchone()[0] == 6
    assert store_db.execute("SELECT count(*) FROM pending_dependent_fetches").fetchone()[0] == 12


def test_a_cancel_inside_an_ingest_page_keeps_the_items_before_it(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _context()
    real = ingest_phase.ingest_issue

    def cancel_after_3(conn: apsw.Connection, project_id: int, fetched: Any, **kw: Any) -> Any:
        out = real(conn, project_id, fetched, **kw)
        if fetched.item.iid == 3:
            ctx.cancel_event.set()  # seen at the next item's safe point
        return out

    monkeypatch.setattr(ingest_phase, "ingest_issue", cancel_after_3)
    monkeypatch.setattr(ingest_phase, "ingest_group", lambda *args, **kw: None)  # item by item
    with pytest.raises(RunCancelled):
        ingest_phase._write_page(store_db, ctx, gl.project_id, "issues", _page(gl, 10),
                                 ingest_phase.CursorWalk(None))
    assert _issues(store_db) == [1, 2, 3] and not store_db.in_transaction
