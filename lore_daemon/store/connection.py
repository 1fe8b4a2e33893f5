"""apsw connections and the process's single writer thread.

SQLite allows one writer at a time per database file. The daemon therefore funnels every write
through ONE connection owned by ONE thread (``lore-db-writer``), and serves reads from per-thread
read-only connections on a small pool, so a long ingest never blocks ``lore/syncRuns``. Writers use
``transaction_mode = "IMMEDIATE"``: every ``with conn:`` starts ``BEGIN IMMEDIATE`` (nested blocks
become savepoints). A deferred transaction that later upgrades to a write fails at once with
SQLITE_BUSY_SNAPSHOT, which the busy timeout cannot help with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar, TypeVarTuple

import apsw

from lore_daemon.errors import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_BUSY_TIMEOUT_MS = 5000
READER_THREADS = 2

_BUSY_SUGGESTION = "Another process holds the database write lock for too long; retry shortly."
_GENERIC_SUGGESTION = "Check the database file and disk space; `lore status` shows its path."


def _create_private_file(path: Path) -> None:
    """Create an empty DB file readable only by its owner (it mirrors private issues).

    SQLite gives the -wal and -shm files the same permissions as the main file, so creating the
    main file first is enough. A zero-byte file is a valid empty database.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # someone (maybe another process) created it first: keep its mode
    os.close(fd)


# Prepared statements kept per connection (apsw caps it at 512; its default, 100, is below the
# ~95 distinct texts one standard sync runs, so statements were re-prepared thousands of times).
STATEMENT_CACHE_SIZE = 512
WRITER_CACHE_KIB = 32 * 1024
# A writer checkpoints the WAL once it holds this many pages (SQLite's default is 1000, 4 MB).
# A sync's commits rewrite the same hot index pages again and again; at 1000 pages a 10k-issue
# sync ran ~140 checkpoints in its dependents phase alone, each copying and fsyncing 4 MB, ~1 s
# of writer time. At 16000 pages (64 MB) it runs ~7 and copies each page's last version once.
WAL_AUTOCHECKPOINT_PAGES = 16000
# After a checkpoint resets the WAL, SQLite truncates the file back to this size, so the disk
# space a large sync used is given back instead of kept as the WAL's high-water mark.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


# SQLite's own busy-timeout schedule (ms): short sleeps first, then 100 ms at a time.
_BUSY_DELAYS_MS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100)


def busy_waiter(timeout_ms: int) -> Callable[[int], bool]:
    """A busy handler that waits up to ``timeout_ms`` on SQLite's schedule, sleeping in Python.

    Why not ``set_busy_timeout``: apsw runs ``BEGIN``/``COMMIT`` of ``with conn:`` through
    ``sqlite3_exec`` without releasing the GIL, so SQLite's own busy sleep there holds it. When
    another process holds the write lock, every thread of the daemon — the event loop and the
    readers included — then stood still for the whole wait (measured: 5 s). ``time.sleep``
    releases the GIL, so here only the waiting thread waits.
    """

    def handler(prior_calls: int) -> bool:
        slept = sum(_BUSY_DELAYS_MS[: min(prior_calls, len(_BUSY_DELAYS_MS))])
        slept += max(0, prior_calls - len(_BUSY_DELAYS_MS)) * _BUSY_DELAYS_MS[-1]
        delay = _BUSY_DELAYS_MS[min(prior_calls, len(_BUSY_DELAYS_MS) - 1)]
        if slept >= timeout_ms:
            return False
        time.sleep(min(delay, timeout_ms - slept) / 1000)
        return True

    return handler


class WriterConnection(apsw.Connection):
    """A writer whose ``with conn:`` never holds the GIL while SQLite waits or writes.

    apsw runs the ``BEGIN`` and ``COMMIT`` of its context manager through ``sqlite3_exec``
    without releasing the GIL. ``COMMIT`` is where SQLite writes a transaction's dirty pages to
    the WAL, so every commit of a sync stopped every other thread of the daemon — the event loop
    and the readers — for as long as that took (measured during a standard sync of a 50k-issue
    mirror: 63 stalls over 20 ms, up to 153 ms). Statements run through a cursor do release it.

    So an outermost ``with`` (no transaction open) runs ``BEGIN IMMEDIATE`` and ends with
    ``COMMIT`` — or ``ROLLBACK`` on an exception — as statements; nested blocks, and blocks
    entered inside a transaction opened by hand, are apsw's savepoints as before. The semantics
    are apsw's own.
    """

    _mine: list[bool] | None = None  # per open ``with``: did it open the transaction itself?

    def __enter__(self) -> WriterConnection:
        if self._mine is None:
            self._mine = []
        if not self.in_transaction:
            self.execute("BEGIN IMMEDIATE")
            self._mine.append(True)
        else:
            super().__enter__()
            self._mine.append(False)
        return self

    def __exit__(self, etype: object, evalue: object, tb: object) -> Literal[False]:
        assert self._mine  # an __exit__ always follows its __enter__
        if not self._mine.pop():
            super().__exit__(etype, evalue, tb)  # type: ignore[arg-type]
            return False
        if not self.in_transaction:  # the block ended it by hand
            return False
        if etype is not None:
            self.execute("ROLLBACK")
            return False
        try:
            self.execute("COMMIT")
        except BaseException:
            if self.in_transaction:
                self.execute("ROLLBACK")
            raise
        return False


def open_connection(
    path: str | Path, *, readonly: bool = False, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> apsw.Connection:
    """Open a configured connection: WAL, foreign keys, synchronous=NORMAL, temp_store=MEMORY
    (writers), a busy wait of ``busy_timeout_ms`` that never holds the GIL (:func:`busy_waiter`).

    A writer (``readonly=False``) creates the parent directories and a 0600 file when missing, and
    gets ``transaction_mode = "IMMEDIATE"``. A reader opens the file read-only (it must exist), so
    a stray write through it fails instead of competing with the writer. ``":memory:"`` is
    accepted for throwaway writers.
    """
    name = str(path)
    in_memory = name == ":memory:"
    if readonly:
        flags = apsw.SQLITE_OPEN_READONLY
    else:
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        if not in_memory:
            _create_private_file(Path(name))
    kind = apsw.Connection if readonly else WriterConnection
    conn = kind(name, flags=flags, statementcachesize=STATEMENT_CACHE_SIZE)
    try:
        conn.set_busy_handler(busy_waiter(busy_timeout_ms))
        # Double-quoted string literals silently become strings when a column name is misspelt.
        conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
        conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
        conn.pragma("foreign_keys", True)
        if not readonly:
            mode = conn.pragma("journal_mode", "wal")
            if mode != "wal" and not in_memory:
                raise StoreError(
                    "SQLite refused WAL journal mode for the database.",
                    "DB_ERROR",
                    "Put the database on a local filesystem that supports shared memory (not NFS).",
                    details={"path": name, "journal_mode": str(mode)},
                )
            conn.pragma("synchronous", "NORMAL")
            # Savepoint sub-journals (one per dependent job inside a batched transaction) and
            # sorter spill stay in memory instead of a temp file: ~30% less writer time per job.
            conn.pragma("temp_store", "MEMORY")
            # A writer's page cache (default 2 MB): a sync's random index inserts (discussion ids,
            # payload hashes, FTS terms) miss it once the database outgrows it; 32 MB keeps a
            # 10k-issue project's hot pages (measured: 5-8% less writer time at 10k issues).
            conn.pragma("cache_size", WRITER_CACHE_KIB * -1)
            conn.pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            conn.pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES)
            conn.transaction_mode = "IMMEDIATE"
    except BaseException:
        conn.close()
        raise
    return conn


class Checkpoint(NamedTuple):
    busy: bool
    log_frames: int
    checkpointed_frames: int


def wal_checkpoint(conn: apsw.Connection) -> Checkpoint:
    """Copy the WAL into the main file and truncate it (TRUNCATE mode).

    After a complete checkpoint the main database file alone holds every committed change, which
    is what byte-comparison tests and backups need. Must run outside a transaction.
    """
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert row is not None  # the pragma always answers one row
    busy, log_frames, checkpointed = (int(v) for v in row)
    return Checkpoint(bool(busy), log_frames, checkpointed)


@contextlib.contextmanager
def wrap_db_errors(operation: str = "database operation") -> Iterator[None]:
    """Turn an escaping ``apsw.Error`` into ``StoreError(DB_ERROR)``; also usable as a decorator.

    The message keeps SQLite's own text (constraint and column names; values are always bound,
    never inlined) and the exception class, so a client sees what failed without a traceback.
    """
    try:
        yield
    except apsw.Error as exc:
        kind = type(exc).__name__
        busy = isinstance(exc, apsw.BusyError | apsw.LockedError)
        raise StoreError(
            f"{operation} failed: {kind}: {exc}",
            "DB_ERROR",
            _BUSY_SUGGESTION if busy else _GENERIC_SUGGESTION,
            details={"operation": operation, "sqliteError": kind},
        ) from exc


class Database:
    """The process's database: one writer thread and connection, per-thread readers.

    ``write``/``read`` hand a function to the right thread and give back its result; exceptions
    raised inside it propagate unchanged. Cancelling the awaiting task does NOT interrupt the
    function: it runs to completion on its thread (the writer stays consistent). Long functions
    must poll a ``threading.Event`` themselves to stop early.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        reader_threads: int = READER_THREADS,
    ) -> None:
        self._path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._reader_threads = reader_threads
        self._writer_pool: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._writer: apsw.Connection | None = None
        self._writer_thread: int | None = None
        self._local = threading.local()
        self._readers: list[apsw.Connection] = []
        self._readers_lock = threading.Lock()
        self._schema_version = 0

    @property
    def path(self) -> Path:
        return self._path

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def open(self) -> int:
        """Open the writer on its thread and migrate the schema; returns the schema version."""
        if self._writer_pool is not None:
            return self._schema_version
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lore-db-writer")
        self._reader_pool = ThreadPoolExecutor(
            max_workers=self._reader_threads, thread_name_prefix="lore-db-reader"
        )
        try:
            self._schema_version = self._writer_pool.submit(self._open_writer).result()
        except BaseException:
            self._shutdown_pools()
            raise
        log.info("database open at %s (schema version %d)", self._path, self._schema_version)
        return self._schema_version

    def _open_writer(self) -> int:
        from lore_daemon.store.migrations import migrate  # migrations imports this module

        self._writer_thread = threading.get_ident()
        try:
            with wrap_db_errors(f"opening the database {self._path}"):
                conn = open_connection(self._path, busy_timeout_ms=self._busy_timeout_ms)
        except OSError as exc:  # the parent directory or file could not be created
            raise StoreError(
                f"Cannot create the database at {self._path}: {exc.strerror}.",
                "DB_ERROR",
                "Set storage.db_path (or $LORE_DB_PATH) to a writable location.",
                details={"path": str(self._path)},
            ) from exc
        try:
            with wrap_db_errors("migrating the database"):
                version = migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._writer = conn
        return version

    # ------------------------------------------------------------------ writes

    async def write(self, fn: Callable[[apsw.Connection, *Ts], T], *args: *Ts) -> T:
        """Run ``fn(writer_conn, *args)`` on the writer thread and await its result."""
        return await asyncio.wrap_future(self._submit_write(fn, *args))

    def write_sync(self, fn: Callable[[apsw.Connection, *Ts], T], *args: *Ts) -> T:
        """Blocking ``write``. Called from the writer thread itself, it runs inline (no deadlock)."""
        if threading.get_ident() == self._writer_thread:
            return fn(self._require_writer(), *args)
        return self._submit_write(fn, *args).result()

    def _submit_write(self, fn: Callable[[apsw.Connection, *Ts], T], *args: *Ts) -> Future[T]:
        pool = self._writer_pool
        if pool is None or self._writer is None:
            raise self._closed_error()
        return pool.submit(lambda: fn(self._require_writer(), *args))

    def _require_writer(self) -> apsw.Connection:
        if self._writer is None:
            raise self._closed_error()
        return self._writer

    # ------------------------------------------------------------------ reads

    async def read(self, fn: Callable[[apsw.Connection, *Ts], T], *args: *Ts) -> T:
        """Run ``fn(reader_conn, *args)`` on a reader thread (its own read-only connection)."""
        return await asyncio.wrap_future(self._submit_read(fn, *args))

    def read_sync(self, fn: Callable[[apsw.Connection, *Ts], T], *args: *Ts) -> T:
        """Blocking ``read``. Called from a reader thread, it runs inline on that thread's connection."""
        existing: apsw.Connection | None = getattr(self._local, "conn", None)
        if existing is not None:
            return fn(existing, *args)
        return self._submit_read(fn, *args).result()

    def _submit_read(self, fn: Callable[[apsw.Connection, *Ts], T], *args: *Ts) -> Future[T]:
        pool = self._reader_pool
        if pool is None or self._writer is None:
            raise self._closed_error()
        return pool.submit(lambda: fn(self._reader_connection(), *args))

    def _reader_connection(self) -> apsw.Connection:
        conn: apsw.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with wrap_db_errors(f"opening a reader on {self._path}"):
                conn = open_connection(self._path, readonly=True, busy_timeout_ms=self._busy_timeout_ms)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    # ------------------------------------------------------------------ lifecycle

    def checkpoint(self) -> Checkpoint:
        """TRUNCATE-checkpoint the WAL through the writer (e.g. before copying the file)."""
        return self.write_sync(wal_checkpoint)

    def close(self) -> None:
        """Finish queued work, close every connection and stop the threads. Idempotent."""
        writer_pool = self._writer_pool
        if writer_pool is None:
            return
        if self._reader_pool is not None:
            self._reader_pool.shutdown(wait=True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        if self._writer is not None:
            writer_pool.submit(self._close_writer).result()
        self._shutdown_pools()
        log.info("database closed at %s", self._path)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _shutdown_pools(self) -> None:
        for pool in (self._reader_pool, self._writer_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._reader_pool = self._writer_pool = None
        self._writer_thread = None
        self._writer = None

    def _closed_error(self) -> StoreError:
        return StoreError(
            "The database is not open.", "DB_ERROR", "Open the Database before use.",
            details={"path": str(self._path)},
        )

    def __enter__(self) -> Database:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
