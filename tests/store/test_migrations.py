"""Migrations on real SQLite files: fresh create, no-op re-run, in-place upgrade, rollback, races."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import apsw
import pytest

import lore_daemon
from lore_daemon.errors import StoreError
from lore_daemon.store import (
    Database,
    Migration,
    available_migrations,
    migrate,
    open_connection,
    schema_version,
    wal_checkpoint,
)
from lore_daemon.store.migrations import migrations_dir

SPEC_TABLES = {
    "projects", "issues", "merge_requests", "issue_labels", "issue_assignees", "mr_labels",
    "mr_assignees", "mr_reviewers", "raw_payloads", "discussions", "notes", "resource_state_events",
    "resource_label_events", "resource_milestone_events", "entity_references", "mr_file_changes",
    "documents", "documents_fts", "dirty_sources", "pending_dependent_fetches", "sync_cursors",
    "sync_runs", "app_locks", "schema_migrations",
}


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    connection = open_connection(tmp_path / "lore.db")
    yield connection
    connection.close()


def _tables(conn: apsw.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def _columns(conn: apsw.Connection, table: str) -> dict[str, int]:
    """column name -> position in the primary key (0 = not in it)."""
    return {row[1]: row[5] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))}


def _unique_indexes(conn: apsw.Connection, table: str) -> list[list[str]]:
    found = []
    for _seq, name, unique, *_ in conn.execute("SELECT * FROM pragma_index_list(?)", (table,)):
        if unique:
            found.append([r[2] for r in conn.execute("SELECT * FROM pragma_index_info(?)", (name,))])
    return found


def test_shipped_migrations_are_contiguous_and_found() -> None:
    migrations = available_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].filename == "0001_core.sql"
    assert (migrations_dir() / migrations[0].filename).is_file()


def test_migrations_dir_prefers_the_packaged_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages" / "lore_daemon"
    (package / "_schema" / "sql").mkdir(parents=True)
    monkeypatch.setattr(lore_daemon, "__file__", str(package / "__init__.py"))
    assert migrations_dir() == package / "_schema" / "sql"
    shutil.rmtree(package / "_schema")
    with pytest.raises(StoreError) as err:
        migrations_dir()
    assert err.value.code == "DB_ERROR" and "Reinstall" in err.value.suggestion


def test_fresh_create_has_every_spec_table(conn: apsw.Connection) -> None:
    assert schema_version(conn) == 0
    version = migrate(conn)
    assert version == len(available_migrations()) == schema_version(conn)
    assert _tables(conn) >= SPEC_TABLES
    recorded = conn.execute(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
    ).fetchall()
    assert recorded == [(m.version, m.name, m.checksum) for m in available_migrations()]
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_spec_shapes(conn: apsw.Connection) -> None:
    migrate(conn)
    dirty = _columns(conn, "dirty_sources")
    assert "id" not in dirty
    assert (dirty["source_type"], dirty["source_id"]) == (1, 2)
    assert ["project_id", "entity_type", "entity_iid", "job_type"] in _unique_indexes(
        conn, "pending_dependent_fetches"
    )
    assert ["project_id", "iid"] in _unique_indexes(conn, "issues")
    assert ["project_id", "iid"] in _unique_indexes(conn, "merge_requests")
    for column in ("last_seen_at", "discussions_synced_for_updated_at", "events_synced_for_updated_at"):
        assert column in _columns(conn, "issues")
    for column in ("closes_issues_synced_for_updated_at", "diffs_synced_for_updated_at", "draft", "sha"):
        assert column in _columns(conn, "merge_requests")
    job = (1, "issue", 5, 500, "discussions", 1)
    insert = (
        "INSERT INTO pending_dependent_fetches (project_id, entity_type, entity_iid, entity_id, job_type,"
        " enqueued_at) VALUES (?, ?, ?, ?, ?, ?)"
    )
    conn.execute(insert, job)
    with pytest.raises(apsw.ConstraintError):
        conn.execute(insert, job)


def test_documents_fts_follows_insert_update_delete(conn: apsw.Connection) -> None:
    migrate(conn)

    def hits(term: str) -> list[int]:
        query = "SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?"
        return [r[0] for r in conn.execute(query, (term,))]

    with conn:
        conn.execute(
            "INSERT INTO documents (source_type, source_id, title, content, content_hash, generated_at)"
            " VALUES ('issue', 10, 'Login crash', 'The parser explodes on tokens', 'h1', 1)"
        )
    doc_id = conn.last_insert_rowid()
    assert hits("parser") == [doc_id] and hits("login") == [doc_id]
    with conn:
        conn.execute("UPDATE documents SET content = 'Renderer leaks memory' WHERE id = ?", (doc_id,))
    assert hits("parser") == [] and hits("renderer") == [doc_id] and hits("login") == [doc_id]
    with conn:
        conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
    assert hits("renderer") == [] and hits("login") == []
    conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('integrity-check')")


def test_rerun_is_a_noop(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    conn = open_connection(path)
    first = migrate(conn)
    wal_checkpoint(conn)
    before = path.read_bytes()
    changes = conn.total_changes()
    assert migrate(conn) == first
    assert conn.total_changes() == changes
    wal_checkpoint(conn)
    assert path.read_bytes() == before
    conn.close()
    with Database(path) as db:  # and again through the daemon's start-up path
        assert db.schema_version == first
    assert path.read_bytes() == before


def _seed_v1(conn: apsw.Connection) -> None:
    with conn:
        conn.execute(
            "INSERT INTO projects VALUES (7, 'g/p', 'P', 'https://gl/g/p', 'main', 1700000000000)"
        )
        conn.execute("INSERT INTO users VALUES (3, 'alice', 'Alice', 'active', NULL, NULL)")
        conn.execute("INSERT INTO raw_payloads VALUES (1, 'abc', ?, 5)", ('{"iid": 12, "title": "ünïcode"}',))
        conn.execute(
            "INSERT INTO issues (gitlab_id, project_id, iid, title, description, state, author_id, web_url,"
            " created_at, updated_at, last_seen_at, raw_payload_id, discussions_synced_for_updated_at)"
            " VALUES (100, 7, 12, 'Crash ✓', ?, 'opened', 3, 'https://gl/g/p/-/issues/12', 1, 2, 3, 1, 2)",
            ("line1\nline2\x00tail",),
        )
        conn.executemany("INSERT INTO issue_labels VALUES (100, ?)", [("bug",), ("P1",)])
        conn.execute("INSERT INTO issue_assignees VALUES (100, 3)")
        conn.execute("INSERT INTO sync_cursors VALUES (7, 'issues', 2, 100, 9)")


def _dump(conn: apsw.Connection, tables: list[str]) -> dict[str, list[tuple[object, ...]]]:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def test_upgrade_from_version_1_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    conn = open_connection(path)
    assert migrate(conn, target=1) == 1
    assert "documents" not in _tables(conn)
    _seed_v1(conn)
    tables = [
        "projects", "users", "raw_payloads", "issues", "issue_labels", "issue_assignees", "sync_cursors"
    ]
    before = _dump(conn, tables)
    schema_before = conn.execute("SELECT name, sql FROM sqlite_schema ORDER BY name").fetchall()
    conn.close()

    with Database(path) as db:  # the upgrade happens where it would in production: at open
        assert db.schema_version == len(available_migrations())
        after = db.read_sync(_dump, tables)
        schema_after = db.read_sync(lambda c: c.execute("SELECT name, sql FROM sqlite_schema").fetchall())
        check = db.read_sync(lambda c: c.execute("PRAGMA integrity_check").fetchall())
    assert after == before
    assert after["issues"][0][4] == "line1\nline2\x00tail"
    assert set(schema_before) <= set(schema_after)
    assert check == [("ok",)]


def _write(folder: Path, files: dict[str, str]) -> list[Migration]:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(textwrap.dedent(sql))
    return available_migrations(folder)


def test_failing_migration_rolls_back_with_its_record(tmp_path: Path, conn: apsw.Connection) -> None:
    folder = tmp_path / "sql"
    migrations = _write(folder, {
        "0001_ok.sql": "CREATE TABLE a (x);",
        "0002_bad.sql": "CREATE TABLE b (x); INSERT INTO b VALUES (1); INSERT INTO a VALUES (1);\n"
                        "CREATE TABLE broken (;",
    })
    with pytest.raises(StoreError) as err:
        migrate(conn, migrations=migrations)
    assert err.value.code == "DB_ERROR" and "0002_bad.sql" in err.value.message
    assert schema_version(conn) == 1
    assert "b" not in _tables(conn)
    assert conn.execute("SELECT count(*) FROM a").fetchone() == (0,)
    assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
    assert not conn.in_transaction

    (folder / "0002_bad.sql").write_text("CREATE TABLE b (x); INSERT INTO b VALUES (1);")
    assert migrate(conn, migrations=available_migrations(folder)) == 2
    assert conn.execute("SELECT x FROM b").fetchall() == [(1,)]


def test_edited_migration_is_refused(conn: apsw.Connection) -> None:
    original = [Migration(1, "one", "CREATE TABLE a (x);")]
    migrate(conn, migrations=original)
    edited = [Migration(1, "one", "CREATE TABLE a (x, y);"), Migration(2, "two", "CREATE TABLE b (x);")]
    with pytest.raises(StoreError) as err:
        migrate(conn, migrations=edited)
    assert err.value.code == "DB_ERROR"
    assert "0001_one.sql" in err.value.message and "changed after it was applied" in err.value.message
    assert "b" not in _tables(conn)
    crlf = [Migration(1, "one", "CREATE TABLE a (x);".replace(";", ";\r\n"))]
    assert Migration(1, "one", "CREATE TABLE a (x);\n").checksum == crlf[0].checksum


def test_newer_database_is_refused(conn: apsw.Connection) -> None:
    both = [Migration(1, "one", "CREATE TABLE a (x);"), Migration(2, "two", "CREATE TABLE b (x);")]
    migrate(conn, migrations=both)
    with pytest.raises(StoreError) as err:
        migrate(conn, migrations=both[:1])
    assert "schema version 2" in err.value.message and "Upgrade lore-daemon" in err.value.suggestion


def test_bad_targets_and_transactions(conn: apsw.Connection) -> None:
    with pytest.raises(StoreError, match="Cannot migrate to version 99"):
        migrate(conn, target=99)
    migrate(conn)
    assert migrate(conn, target=1) == len(available_migrations())  # never downgrades
    with conn, pytest.raises(StoreError, match="inside an open transaction"):
        migrate(conn, migrations=[*available_migrations(), Migration(99, "x", "SELECT 1;")])


def test_bad_migration_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"NNNN_name\.sql"):
        _write(tmp_path / "a", {"0001_Bad-Name.sql": "SELECT 1;"})
    with pytest.raises(StoreError, match="without gaps"):
        _write(tmp_path / "b", {"0001_one.sql": "SELECT 1;", "0003_three.sql": "SELECT 1;"})


RACER = """
import pathlib, sys, time
from lore_daemon.store import available_migrations, migrate, open_connection
db, folder, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
migrations = available_migrations(folder)
conn = open_connection(db, busy_timeout_ms=30000)
while not go.exists():
    time.sleep(0.001)
print(migrate(conn, migrations=migrations))
"""


def test_processes_racing_to_migrate_apply_each_migration_once(tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    shutil.copytree(migrations_dir(), folder)
    slow = len(available_migrations(folder)) + 1
    (folder / f"{slow:04d}_slow.sql").write_text(
        "CREATE TABLE filler (n INTEGER PRIMARY KEY);\n"
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 200000)\n"
        "INSERT INTO filler SELECT n FROM c;\n"
    )
    db, go = tmp_path / "race.db", tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(db), str(folder), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    go.touch()
    results = [r.communicate(timeout=120) for r in racers]
    assert [r.returncode for r in racers] == [0, 0, 0], [err for _out, err in results]
    assert [out.strip() for out, _err in results] == [str(slow)] * 3
    conn = open_connection(db)
    try:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == list(range(1, slow + 1))
        assert conn.execute("SELECT count(*) FROM filler").fetchone() == (200000,)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
