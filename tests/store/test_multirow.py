"""Multi-row statements: every row lands, in order, whatever the count; RETURNING rows come back."""

from __future__ import annotations

import apsw
import pytest

from lore_daemon.store import multirow


@pytest.fixture
def conn() -> apsw.Connection:
    db = apsw.Connection(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0)")
    return db


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 64, 65, 200])
def test_every_row_is_inserted_and_returned(conn: apsw.Connection, count: int):
    rows = [(k, f"v{k}") for k in range(count)]
    returned = multirow.insert_rows(conn, "INSERT INTO t (k, v)", rows, "RETURNING k, v")
    assert sorted(returned) == rows
    assert conn.execute("SELECT k, v FROM t ORDER BY k").fetchall() == rows


def test_a_repeated_key_is_upserted_in_row_order_like_executemany(conn: apsw.Connection):
    rows = [(1, "first"), (2, "two"), (1, "second"), (1, "third")]
    upsert = "ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = n + 1"
    multirow.insert_rows(conn, "INSERT INTO t (k, v)", rows, upsert)
    assert conn.execute("SELECT k, v, n FROM t ORDER BY k").fetchall() == [(1, "third", 2), (2, "two", 0)]


def test_a_failing_row_rolls_back_its_whole_statement(conn: apsw.Connection):
    with pytest.raises(apsw.ConstraintError):
        multirow.insert_rows(conn, "INSERT INTO t (k, v)", [(1, "a"), (2, None), (3, "c"), (4, "d")])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)  # one chunk of 4: nothing landed
