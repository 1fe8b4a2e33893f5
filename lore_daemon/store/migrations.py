"""Schema migrations: ``schema/sql/NNNN_name.sql`` files applied in order, append-only.

Each migration runs with its ``schema_migrations`` record in ONE ``BEGIN IMMEDIATE`` transaction,
so a failure leaves neither half behind. Foreign keys are off while it runs and checked before it
commits (SQLite's procedure for a change ALTER TABLE cannot make: new table, rows copied, old
table dropped, new one renamed), so a rebuild cannot cascade deletes into the tables that point
at it, and a migration that would leave a dangling reference is rolled back.

The applied set is re-read inside that transaction: two processes migrating the same fresh file
serialise on the write lock and the second finds the work done. A recorded checksum that no
longer matches its file means a shipped migration was edited, which would leave databases in
different shapes under the same version number, so it is refused.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import NamedTuple

import apsw

import lore_daemon
from lore_daemon.errors import StoreError
from lore_daemon.timeutil import now_ms

_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
FOREIGN_KEY_VIOLATIONS_SHOWN = 5  # a refused migration's error names this many dangling rows

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL,
    checksum   TEXT    NOT NULL
)
"""


class Migration(NamedTuple):
    version: int
    name: str
    sql: str

    @property
    def filename(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        """sha256 of the SQL with line endings normalised (a CRLF checkout is not an edit)."""
        text = self.sql.replace("\r\n", "\n")
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def migrations_dir() -> Path:
    """Where the SQL files are: inside the installed package, else the repository checkout."""
    package = Path(lore_daemon.__file__).parent
    for candidate in (package / "_schema" / "sql", package.parent / "schema" / "sql"):
        if candidate.is_dir():
            return candidate
    raise StoreError(
        "The schema migrations are missing from the installation.",
        "DB_ERROR",
        "Reinstall lore-daemon; the package must ship lore_daemon/_schema/sql.",
        details={"looked_in": str(package / "_schema" / "sql")},
    )


def available_migrations(directory: Path | None = None) -> list[Migration]:
    """The shipped migrations, sorted; versions must run 1, 2, 3... without gaps or duplicates."""
    folder = directory if directory is not None else migrations_dir()
    found: list[Migration] = []
    for file in sorted(folder.glob("*.sql")):
        match = _FILENAME.match(file.name)
        if match is None:
            raise StoreError(
                f"Migration file {file.name} does not follow the NNNN_name.sql pattern.",
                "DB_ERROR",
                "Rename it (four-digit version, underscore, lowercase name).",
                details={"file": str(file)},
            )
        found.append(Migration(int(match.group(1)), match.group(2), file.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(
            f"Migration versions must be 1..{len(found)} without gaps or duplicates; found {versions}.",
            "DB_ERROR",
            "Fix the numbering of the files in schema/sql.",
            details={"directory": str(folder)},
        )
    return found


def _ledger_exists(conn: apsw.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    return row is not None


def _applied(conn: apsw.Connection) -> dict[int, tuple[str, str]]:
    if not _ledger_exists(conn):
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}  # type: ignore[arg-type]


def schema_version(conn: apsw.Connection) -> int:
    """The highest applied migration version; 0 for a fresh (or foreign) database."""
    return max(_applied(conn), default=0)


def _check_applied(applied: dict[int, tuple[str, str]], known: dict[int, Migration]) -> None:
    """Refuse a database that is newer than this code or whose migrations were edited."""
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        latest = max(known, default=0)
        raise StoreError(
            f"The database has schema version {max(applied)}, but this lore-daemon knows only up to "
            f"{latest} (unknown migrations {unknown}).",
            "DB_ERROR",
            "Upgrade lore-daemon to the version that created this database, or point storage.db_path "
            "(or $LORE_DB_PATH) at another file.",
            details={"schema_version": max(applied), "known_version": latest},
        )
    for version, (name, checksum) in sorted(applied.items()):
        migration = known[version]
        if checksum != migration.checksum:
            raise StoreError(
                f"Migration {migration.filename} was changed after it was applied to this database "
                "(its checksum differs from the recorded one).",
                "DB_ERROR",
                "Shipped migrations are append-only: restore the original file and put the change in a "
                "new migration.",
                details={"version": version, "name": name, "file": migration.filename},
            )


def _validate_list(migrations: list[Migration]) -> dict[int, Migration]:
    known: dict[int, Migration] = {}
    for migration in migrations:
        if migration.version < 1 or migration.version in known:
            raise StoreError(
                f"Invalid or duplicate migration version {migration.version}.",
                "DB_ERROR",
                "Give every migration a unique positive version.",
                details={"version": migration.version},
            )
        known[migration.version] = migration
    return known


def _apply_next(conn: apsw.Connection, known: dict[int, Migration], target: int) -> bool:
    """Apply the lowest pending migration up to ``target``; False when there is none.

    The explicit BEGIN IMMEDIATE takes the write lock before reading the ledger, so the decision
    is made on the latest committed state even when the connection's transaction_mode is DEFERRED.
    ``PRAGMA foreign_keys`` is a no-op inside a transaction, so it is switched around it.
    """
    enforced = bool(conn.pragma("foreign_keys"))
    conn.pragma("foreign_keys", False)
    try:
        return _apply_next_in_transaction(conn, known, target)
    finally:
        conn.pragma("foreign_keys", enforced)


def _apply_next_in_transaction(conn: apsw.Connection, known: dict[int, Migration], target: int) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_CREATE_LEDGER)
        applied = _applied(conn)
        _check_applied(applied, known)
        pending = [v for v in sorted(known) if v not in applied and v <= target]
        if not pending:
            conn.execute("COMMIT")
            return False
        migration = known[pending[0]]
        try:
            for _ in conn.execute(migration.sql):  # runs every statement; drain any rows
                pass
        except apsw.Error as exc:
            raise StoreError(
                f"Migration {migration.filename} failed: {type(exc).__name__}: {exc}",
                "DB_ERROR",
                "The database was left at the previous version. Report this with `lore status` output.",
                details={"version": migration.version, "file": migration.filename},
            ) from exc
        _check_foreign_keys(conn, migration)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at, checksum) VALUES (?, ?, ?, ?)",
            (migration.version, migration.name, now_ms(), migration.checksum),
        )
        conn.execute("COMMIT")
        return True
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_foreign_keys(conn: apsw.Connection, migration: Migration) -> None:
    """Refuse (and so roll back) a migration after which a row points at nothing."""
    violations = []
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
        violations.append({"table": table, "rowid": rowid, "parent": parent})
        if len(violations) == FOREIGN_KEY_VIOLATIONS_SHOWN:
            break
    if violations:
        raise StoreError(
            f"Migration {migration.filename} would leave rows that point at missing rows "
            f"(first: {violations[0]['table']} -> {violations[0]['parent']}).",
            "DB_ERROR",
            "The database was left at the previous version. Report this with `lore status` output.",
            details={"version": migration.version, "file": migration.filename, "violations": violations},
        )


def migrate(
    conn: apsw.Connection, *, target: int | None = None, migrations: list[Migration] | None = None
) -> int:
    """Bring the schema up to ``target`` (default: the latest); returns the resulting version.

    A no-op (and no write lock) when everything is applied. Never downgrades: a ``target`` below
    the current version leaves the database as it is. ``migrations`` replaces the shipped list
    (tests use it). Must be called outside a transaction.
    """
    known = _validate_list(available_migrations() if migrations is None else migrations)
    latest = max(known, default=0)
    wanted = latest if target is None else target
    if not 0 <= wanted <= latest:
        raise StoreError(
            f"Cannot migrate to version {wanted}: known versions are 0..{latest}.",
            "DB_ERROR",
            "Pass a target within the known versions.",
            details={"target": wanted},
        )
    if conn.in_transaction:
        raise StoreError(
            "migrate() was called inside an open transaction.",
            "DB_ERROR",
            "Call migrate() on a connection in autocommit mode.",
        )
    applied = _applied(conn)  # fast path: a read, no write lock, when nothing is pending
    _check_applied(applied, known)
    if all(v in applied for v in known if v <= wanted):
        return schema_version(conn)
    while _apply_next(conn, known, wanted):
        pass
    return schema_version(conn)
