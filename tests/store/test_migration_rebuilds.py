"""Migrations that rebuild a table: rows and local ids survive, nothing cascades, and a migration
that would leave a dangling reference is rolled back (foreign keys off while it runs, checked
before it commits)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import apsw
import pytest

from lore_daemon.errors import StoreError
from lore_daemon.store import available_migrations, migrate, open_connection, schema_version

PER_PARENT_KEY = ["noteable_type", "noteable_id", "gitlab_id"]
HEX_A, HEX_B, HEX_C = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    connection = open_connection(tmp_path / "lore.db")
    yield connection
    connection.close()


def _seed_discussions(conn: apsw.Connection) -> None:
    """Three threads on two parents, their notes and one discussion document (local ids 7, 8, 20)."""
    with conn:
        conn.execute(
            "INSERT INTO discussions (id, gitlab_id, project_id, noteable_type, noteable_id,"
            " individual_note, created_at, updated_at) VALUES"
            " (7, ?, 1, 'issue', 100, 0, 10, 20), (8, ?, 1, 'issue', 100, 1, 11, 11),"
            " (20, ?, 1, 'merge_request', 500, 0, 12, 30)",
            (HEX_A, HEX_B, HEX_C),
        )
        conn.execute(
            "INSERT INTO notes (gitlab_id, discussion_id, project_id, body, created_at, updated_at)"
            " VALUES (1, 7, 1, 'first', 10, 10), (2, 7, 1, 'reply', 20, 20), (3, 8, 1, 'alone', 11, 11),"
            " (4, 20, 1, 'on the MR', 12, 30)"
        )
        conn.execute(
            "INSERT INTO documents (source_type, source_id, project_id, title, content, content_hash,"
            " generated_at) VALUES ('discussion', 7, 1, 'Thread', 'first reply', 'h', 40)"
        )


def _dump(conn: apsw.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("discussions", "notes", "documents")
    }


def _indexes(conn: apsw.Connection, table: str) -> dict[str, list[str]]:
    return {
        str(name): [str(r[2]) for r in conn.execute("SELECT * FROM pragma_index_info(?)", (name,))]
        for _seq, name, *_ in conn.execute("SELECT * FROM pragma_index_list(?)", (table,))
    }


def test_discussions_rebuild_keeps_rows_local_ids_and_notes(conn: apsw.Connection) -> None:
    assert migrate(conn, target=6) == 6
    _seed_discussions(conn)
    before = _dump(conn)

    assert migrate(conn) == len(available_migrations())

    assert _dump(conn) == before  # notes did not cascade away when the old table was dropped
    assert list(_indexes(conn, "discussions").values()) == [PER_PARENT_KEY]
    assert conn.pragma("foreign_keys") == 1
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    with conn:  # notes still follow their discussion through the renamed table
        conn.execute("DELETE FROM discussions WHERE id = 7")
    assert conn.execute("SELECT gitlab_id FROM notes ORDER BY 1").fetchall() == [(3,), (4,)]
    with conn:  # and the next discussion continues after the copied ids
        new_id = conn.execute(
            "INSERT INTO discussions (gitlab_id, project_id, noteable_type, noteable_id)"
            " VALUES (?, 1, 'issue', 101) RETURNING id", (HEX_A,)
        ).fetchone()
    assert new_id == (21,)


def test_a_discussion_is_unique_per_parent(conn: apsw.Connection) -> None:
    migrate(conn)
    insert = (
        "INSERT INTO discussions (gitlab_id, project_id, noteable_type, noteable_id) VALUES (?, 1, ?, ?)"
    )
    with conn:
        conn.execute(insert, (HEX_A, "issue", 100))
        conn.execute(insert, (HEX_A, "merge_request", 100))  # another parent: its own copy
    with pytest.raises(apsw.ConstraintError), conn:
        conn.execute(insert, (HEX_A, "issue", 100))
    assert conn.execute("SELECT count(*) FROM discussions").fetchone() == (2,)


def test_a_migration_that_leaves_a_dangling_reference_is_rolled_back(
    tmp_path: Path, conn: apsw.Connection
) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    files = {
        "0001_tables.sql": """
            CREATE TABLE parent (id INTEGER PRIMARY KEY);
            CREATE TABLE child (id INTEGER PRIMARY KEY,
                                parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE);
            INSERT INTO parent VALUES (1), (2);
            INSERT INTO child VALUES (10, 1), (11, 2);
        """,
        # Foreign keys are off inside a migration: this delete neither cascades nor fails at once.
        "0002_drops_a_parent.sql": "DELETE FROM parent WHERE id = 2; CREATE TABLE marker (x);",
    }
    for name, sql in files.items():
        (folder / name).write_text(textwrap.dedent(sql))

    with pytest.raises(StoreError) as err:
        migrate(conn, migrations=available_migrations(folder))

    assert err.value.code == "DB_ERROR" and "0002_drops_a_parent.sql" in err.value.message
    assert err.value.details["violations"] == [{"table": "child", "rowid": 11, "parent": "parent"}]
    assert schema_version(conn) == 1
    assert conn.execute("SELECT id FROM parent ORDER BY 1").fetchall() == [(1,), (2,)]
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'marker'").fetchone() == (0,)
    assert conn.pragma("foreign_keys") == 1 and not conn.in_transaction


def test_lookups_by_parent_use_the_per_parent_key(conn: apsw.Connection) -> None:
    from lore_daemon.store import discussions

    migrate(conn)
    by_parent = "USING COVERING INDEX sqlite_autoindex_discussions_1 (noteable_type=? AND noteable_id=?)"
    for sql in (discussions._HAS_ANY, discussions._PARENTS_WITH_ANY,
                "DELETE FROM discussions WHERE noteable_type = ? AND noteable_id = ? RETURNING id"):
        plan = [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (None, None))]
        assert any(by_parent in step for step in plan), plan
    plan = [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + discussions._LOAD, (None, None))]
    assert "SEARCH d USING INDEX sqlite_autoindex_discussions_1 (noteable_type=? AND noteable_id=?)" in plan
