"""Replace-all upserts derived from one column list: the SQL they emit, and that every one the
store declares matches the real schema (columns exist, the key is a unique constraint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lore_daemon.store import dependents, discussions, entities, entity_sql
from lore_daemon.store.connection import open_connection
from lore_daemon.store.migrations import migrate
from lore_daemon.store.upsert import Upsert

DECLARED = [
    entities._UPSERT_PROJECT,
    entity_sql.ISSUE_SQL.upsert.sql,
    entity_sql.MR_SQL.upsert.sql,
    discussions._DISCUSSION_UPSERT.sql,
    discussions._NOTE_UPSERT.sql,
    *(u.sql for u in dependents._EVENT_UPSERTS.values()),
    dependents._UPSERT_CLOSES,
    dependents._UPSERT_FILE,
]


def test_sql_sets_every_non_key_column_from_excluded() -> None:
    up = Upsert("t", ("id", "a", "b"), key=("id",), only_if_changed=True, returning="id")
    assert up.sql == (
        "INSERT INTO t (id, a, b) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "a = excluded.a, b = excluded.b WHERE (a, b) IS NOT (excluded.a, excluded.b) RETURNING id"
    )
    assert up.head == "INSERT INTO t (id, a, b)"
    assert up.tail.startswith("ON CONFLICT (id)")


@pytest.mark.parametrize(
    ("table", "columns", "key"),
    [
        ("t; DROP TABLE x", ("id", "a"), ("id",)),
        ("t", ("id", "a = 1"), ("id",)),
        ("t", ("id", "a"), ("missing",)),
        ("t", ("id",), ("id",)),
    ],
)
def test_refuses_anything_but_plain_identifiers_and_a_real_key(
    table: str, columns: tuple[str, ...], key: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        Upsert(table, columns, key=key)


def test_every_declared_upsert_prepares_against_the_schema(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "lore.db")
    migrate(conn)
    for sql in DECLARED:
        # Preparing checks every column and that ON CONFLICT names a unique constraint.
        conn.execute("EXPLAIN " + sql, tuple(None for _ in range(sql.count("?"))))
    conn.close()


def test_derived_entity_statements_prepare_against_the_schema(tmp_path: Path) -> None:
    """The local-state lookups and link-table statements built from names in ``entity_sql``."""
    conn = open_connection(tmp_path / "lore.db")
    migrate(conn)
    statements = []
    for sql in (entity_sql.ISSUE_SQL, entity_sql.MR_SQL):
        statements += [sql.local.by_ids, sql.local.by_iids]
        for links in (sql.labels, *sql.people):
            statements += [links.delete, links.delete_many, links.insert]
    for statement in statements:
        conn.execute("EXPLAIN " + statement, tuple(None for _ in range(statement.count("?"))))
    conn.close()


def test_derived_names_are_checked() -> None:
    with pytest.raises(ValueError, match="identifier"):
        entity_sql.LocalStateSql("issues; DROP TABLE x", ("events",))
    with pytest.raises(ValueError, match="identifier"):
        entity_sql.LinkTable("issue_labels", "issue_id", "label)")
