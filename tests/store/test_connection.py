"""Connections and the single-writer Database, on real SQLite files."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import apsw
import pytest

from lore_daemon.errors import StoreError
from lore_daemon.store import Database, available_migrations, open_connection, wal_checkpoint, wrap_db_errors
from lore_daemon.store.connection import WAL_AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES

LOCK_ROW = (
    "INSERT INTO app_locks (name, owner, run_id, pid, acquired_at, heartbeat_at) VALUES (?, ?, NULL, 1, 1, 1)"
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writer_pragmas_and_private_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "lore.db"
    conn = open_connection(path, busy_timeout_ms=1234)
    try:
        assert conn.pragma("journal_mode") == "wal"
        assert conn.pragma("foreign_keys") == 1
        assert conn.pragma("synchronous") == 1  # NORMAL
        assert conn.pragma("temp_store") == 2  # MEMORY
        assert conn.pragma("busy_timeout") == 0  # the wait is busy_waiter's (it releases the GIL)
        assert conn.pragma("wal_autocheckpoint") == WAL_AUTOCHECKPOINT_PAGES == 16_000
        assert conn.pragma("journal_size_limit") == WAL_SIZE_LIMIT_BYTES
        assert conn.transaction_mode == "IMMEDIATE"
        with conn:
            conn.execute("CREATE TABLE t (x)")
        assert _mode(path) == 0o600
        assert _mode(Path(f"{path}-wal")) == 0o600  # SQLite copies the main file's mode
    finally:
        conn.close()


def test_existing_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    open_connection(path).close()
    assert _mode(path) == 0o640


def test_with_block_is_begin_immediate_and_nests_as_savepoint(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    writer = open_connection(path)
    other = open_connection(path, busy_timeout_ms=50)
    writer.execute("CREATE TABLE t (x)")
    try:
        with writer:
            # No statement ran yet: only BEGIN IMMEDIATE can already hold the write lock.
            with pytest.raises(apsw.BusyError):
                other.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(ZeroDivisionError), writer:
                writer.execute("INSERT INTO t VALUES (2)")
                raise ZeroDivisionError
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        other.close()
        writer.close()


def test_readonly_connection_refuses_writes_and_needs_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    writer = open_connection(path)
    writer.execute("CREATE TABLE t (x); INSERT INTO t VALUES (7)")
    reader = open_connection(path, readonly=True)
    try:
        assert reader.execute("SELECT x FROM t").fetchall() == [(7,)]
        with pytest.raises(apsw.ReadOnlyError):
            reader.execute("INSERT INTO t VALUES (8)")
    finally:
        reader.close()
        writer.close()
    with pytest.raises(apsw.CantOpenError):
        open_connection(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_double_quoted_strings_are_rejected(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "lore.db")
    try:
        conn.execute("CREATE TABLE t (x)")
        with pytest.raises(apsw.SQLError):
            conn.execute('SELECT * FROM t WHERE x = "not_a_column"')
    finally:
        conn.close()


def test_database_open_migrates_and_reports_version(tmp_path: Path) -> None:
    with Database(tmp_path / "lore.db") as db:
        assert db.schema_version == len(available_migrations())
        assert db.path == tmp_path / "lore.db"
        tables = db.read_sync(lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_schema")})
        assert "issues" in tables and "schema_migrations" in tables


def test_writes_run_on_one_writer_thread_reads_on_reader_threads(tmp_path: Path) -> None:
    db = Database(tmp_path / "lore.db")
    db.open()
    try:
        names = {db.write_sync(lambda _c: threading.current_thread().name) for _ in range(5)}
        assert len(names) == 1 and names.pop().startswith("lore-db-writer")
        reader_names = db.read_sync(lambda _c: threading.current_thread().name)
        assert reader_names.startswith("lore-db-reader")

        def create(conn: apsw.Connection, value: int) -> int:
            with conn:
                conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
                conn.execute("INSERT INTO t VALUES (?)", (value,))
            return conn.changes()

        assert db.write_sync(create, 41) == 1
        assert db.read_sync(lambda c: c.execute("SELECT x FROM t").fetchall()) == [(41,)]
        with pytest.raises(apsw.ReadOnlyError):
            db.read_sync(lambda c: c.execute("INSERT INTO t VALUES (1)"))
    finally:
        db.close()


class _Boom(Exception):
    pass


def test_exceptions_propagate_unchanged(tmp_path: Path) -> None:
    def fail(_conn: apsw.Connection) -> None:
        raise _Boom("from the writer")

    with Database(tmp_path / "lore.db") as db:
        with pytest.raises(_Boom, match="from the writer"):
            db.write_sync(fail)
        with pytest.raises(_Boom):
            db.read_sync(fail)
        with pytest.raises(apsw.ConstraintError):
            db.write_sync(lambda c: c.execute("INSERT INTO projects (gitlab_id) VALUES (1)"))


def test_write_sync_inside_a_write_runs_inline(tmp_path: Path) -> None:
    with Database(tmp_path / "lore.db") as db:
        outer_thread = db.write_sync(lambda _c: db.write_sync(lambda _c2: threading.current_thread().name))
        assert outer_thread.startswith("lore-db-writer")


async def test_async_read_is_not_blocked_by_an_open_write(tmp_path: Path) -> None:
    db = Database(tmp_path / "lore.db")
    db.open()
    entered, release = threading.Event(), threading.Event()

    def long_write(conn: apsw.Connection) -> None:
        with conn:
            conn.execute(LOCK_ROW, ("sync", "me"))
            entered.set()
            release.wait(10)

    try:
        writing = asyncio.ensure_future(db.write(long_write))
        await asyncio.to_thread(entered.wait, 10)
        # The write transaction is open and uncommitted; a reader sees the last committed state.
        reading = db.read(lambda c: c.execute("SELECT count(*) FROM app_locks").fetchone())
        count = await asyncio.wait_for(reading, 10)
        assert count == (0,)
        release.set()
        await writing
        assert await db.read(lambda c: c.execute("SELECT count(*) FROM app_locks").fetchone()) == (1,)
    finally:
        release.set()
        db.close()


async def test_cancelling_the_awaiting_task_does_not_interrupt_the_function(tmp_path: Path) -> None:
    db = Database(tmp_path / "lore.db")
    db.open()
    started, go = threading.Event(), threading.Event()

    def write(conn: apsw.Connection) -> None:
        started.set()
        go.wait(10)
        with conn:
            conn.execute(LOCK_ROW, ("embed", "me"))

    try:
        task = asyncio.ensure_future(db.write(write))
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        go.set()
        # Queued after the cancelled one on the same thread, so it sees its commit.
        assert db.write_sync(lambda c: c.execute("SELECT name FROM app_locks").fetchall()) == [("embed",)]
    finally:
        go.set()
        db.close()


def test_close_is_idempotent_and_use_after_close_fails(tmp_path: Path) -> None:
    db = Database(tmp_path / "lore.db")
    db.open()
    db.read_sync(lambda c: c.execute("SELECT 1").fetchone())
    db.close()
    db.close()
    assert not db.is_open
    with pytest.raises(StoreError) as err:
        db.write_sync(lambda c: None)
    assert err.value.code == "DB_ERROR"
    with pytest.raises(StoreError):
        db.read_sync(lambda c: None)


def test_open_failure_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    db = Database(blocker / "lore.db")
    with pytest.raises(StoreError, match="Cannot create the database"):
        db.open()
    assert not db.is_open
    not_a_db = tmp_path / "garbage.db"
    not_a_db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as err:
        Database(not_a_db).open()
    assert err.value.code == "DB_ERROR" and "NotADBError" in err.value.message


def test_wrap_db_errors_maps_apsw_errors_without_values(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "lore.db")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (?)", ("secret-value-123",))
    try:
        with pytest.raises(StoreError) as err, wrap_db_errors("insert t"):
            conn.execute("INSERT INTO t VALUES (?)", ("secret-value-123",))
        assert err.value.code == "DB_ERROR"
        assert "ConstraintError" in err.value.message and "insert t" in err.value.message
        assert "secret-value-123" not in str(err.value)
        assert isinstance(err.value.__cause__, apsw.ConstraintError)

        @wrap_db_errors("decorated")
        def bad() -> None:
            conn.execute("SELECT * FROM nope")

        with pytest.raises(StoreError, match="decorated failed: SQLError"):
            bad()
        with pytest.raises(KeyError), wrap_db_errors():
            raise KeyError("not a database error")
    finally:
        conn.close()


def test_a_busy_wait_holds_no_lock_other_threads_need(tmp_path: Path) -> None:
    """Another process holds the write lock; ``with conn:`` (BEGIN IMMEDIATE, run by apsw with
    the GIL held) waits its whole timeout, and Python threads keep running meanwhile."""
    path = tmp_path / "lore.db"
    open_connection(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import apsw, sys, time\n"
            f"c = apsw.Connection({str(path)!r})\n"
            "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.read()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    waiter = open_connection(path, busy_timeout_ms=400)
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    ticker = threading.Thread(target=tick)
    try:
        started = time.monotonic()
        ticker.start()
        with pytest.raises(apsw.BusyError), waiter:
            pass
        waited = time.monotonic() - started
        done.set()
        ticker.join()
        assert waited >= 0.4  # it did wait for the lock, up to its timeout
        during = [t for t in ticks if t < started + waited]
        assert len(during) >= 10  # and the other thread ran all along (with SQLite's sleep: ~1)
    finally:
        done.set()
        waiter.close()
        holder.stdin.close()
        holder.wait(10)


def test_a_commit_writes_the_wal_without_holding_the_gil(tmp_path: Path) -> None:
    """apsw's own context manager COMMITs with the GIL held; the writer's does it as a statement,
    so a Python thread keeps running while SQLite writes a big transaction to the WAL."""
    conn = open_connection(tmp_path / "lore.db")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        with conn:
            conn.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 500,)] * 60_000)
            started = time.monotonic()
        ended = time.monotonic()
    finally:
        done.set()
        ticker.join()
        conn.close()
    gaps = [b - a for a, b in itertools.pairwise(ticks) if a < ended and b > started]
    assert ended - started > 0.005  # the commit had real work to do
    assert max(gaps, default=0.0) < (ended - started) / 2  # and the ticker never stopped for it


def test_writer_transactions_keep_apsw_semantics(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "lore.db")
    conn.execute("CREATE TABLE t (v TEXT)")
    try:
        with pytest.raises(ZeroDivisionError), conn:
            conn.execute("INSERT INTO t VALUES ('outer')")
            with conn:
                conn.execute("INSERT INTO t VALUES ('inner')")
            raise ZeroDivisionError
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(0,)] and not conn.in_transaction
        with conn:
            conn.execute("INSERT INTO t VALUES ('kept')")
            with pytest.raises(KeyError), conn:
                conn.execute("INSERT INTO t VALUES ('undone')")
                raise KeyError
        assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)] and not conn.in_transaction
        conn.execute("BEGIN IMMEDIATE")  # a transaction opened by hand: a with block is a savepoint
        with conn:
            conn.execute("INSERT INTO t VALUES ('by hand')")
        assert conn.in_transaction
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]
        with conn:
            conn.execute("INSERT INTO t VALUES ('committed by hand')")
            conn.execute("COMMIT")
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(2,)] and not conn.in_transaction
    finally:
        conn.close()


def test_busy_error_gets_a_retry_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    holder = open_connection(path)
    waiter = open_connection(path, busy_timeout_ms=20)
    try:
        with holder, pytest.raises(StoreError) as err, wrap_db_errors("take lock"), waiter:
            pass
        assert err.value.retryable and "retry" in err.value.suggestion
    finally:
        waiter.close()
        holder.close()


def test_wal_checkpoint_moves_everything_into_the_main_file(tmp_path: Path) -> None:
    path = tmp_path / "lore.db"
    conn = open_connection(path)
    with conn:
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    assert os.path.getsize(f"{path}-wal") > 0
    result = wal_checkpoint(conn)
    assert not result.busy and result.log_frames == result.checkpointed_frames
    assert os.path.getsize(f"{path}-wal") == 0
    first = path.read_bytes()
    wal_checkpoint(conn)
    assert path.read_bytes() == first  # nothing changed, nothing moved
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)  # the main file alone is a complete database now
    conn.close()
    check = apsw.Connection(str(copy))
    assert check.execute("SELECT count(*) FROM t").fetchone() == (500,)
    check.close()


def test_database_checkpoint(tmp_path: Path) -> None:
    with Database(tmp_path / "lore.db") as db:
        db.write_sync(lambda c: c.execute(LOCK_ROW, ("sync", "o")))
        assert not db.checkpoint().busy
        assert os.path.getsize(tmp_path / "lore.db-wal") == 0
