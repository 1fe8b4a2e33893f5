"""SQLite store (apsw). Connections and migrations are re-exported here; the per-concern modules
(entities, queue, ledger, locks, documents) are imported from their own modules."""

from lore_daemon.store.connection import (
    Checkpoint,
    Database,
    open_connection,
    wal_checkpoint,
    wrap_db_errors,
)
from lore_daemon.store.migrations import Migration, available_migrations, migrate, schema_version

__all__ = [
    "Checkpoint",
    "Database",
    "Migration",
    "available_migrations",
    "migrate",
    "open_connection",
    "schema_version",
    "wal_checkpoint",
    "wrap_db_errors",
]
