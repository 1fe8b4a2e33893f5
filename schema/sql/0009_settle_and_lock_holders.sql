-- Convergence on real GitLab (issue 15): entities whose dependents are not final, and lock
-- holders a process on the same host can prove dead.
--
-- 1. Partial indexes of the entities whose dependents are behind their version (a watermark
--    older than updated_at): their last fetch was inside the settle window (SPEC §7), failed, or
--    was never made. Each standard sync queues them again, whether or not its listing returned
--    them (store/queue.py enqueue_unsettled, whose WHERE repeats these conditions word for word
--    so SQLite can read the index; it cannot match a function such as coalesce() there). They
--    hold only the few unsettled entities, not the mirror.

CREATE INDEX issues_unsettled ON issues (project_id)
WHERE discussions_synced_for_updated_at IS NULL OR discussions_synced_for_updated_at < updated_at
   OR events_synced_for_updated_at IS NULL OR events_synced_for_updated_at < updated_at;

CREATE INDEX merge_requests_unsettled ON merge_requests (project_id)
WHERE discussions_synced_for_updated_at IS NULL OR discussions_synced_for_updated_at < updated_at
   OR events_synced_for_updated_at IS NULL OR events_synced_for_updated_at < updated_at
   OR closes_issues_synced_for_updated_at IS NULL OR closes_issues_synced_for_updated_at < updated_at
   OR diffs_synced_for_updated_at IS NULL OR diffs_synced_for_updated_at < updated_at;

-- 2. app_locks gains the `standard` lock (one standard sync at a time, held for the whole run,
--    while `sync` is held one write group at a time) and `process`, the holder's identity on its
--    host (boot id, pid namespace and the process's start time): a holder whose process is gone
--    from this host is taken over at once, without waiting for stale_lock_ms, and a pid reused
--    by another process is never taken for the holder.
--
--    SQLite cannot change a CHECK constraint, so the table is rebuilt in place: new table, rows
--    copied (a row exists only while its lock is held), old table dropped, new one renamed.

CREATE TABLE app_locks_rebuilt (
    name         TEXT    PRIMARY KEY CHECK (name IN ('sync', 'embed', 'standard')),
    owner        TEXT    NOT NULL,
    run_id       TEXT,
    pid          INTEGER NOT NULL,
    acquired_at  INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    process      TEXT                -- NULL: unknown (written by an older version, or no /proc)
);

INSERT INTO app_locks_rebuilt (name, owner, run_id, pid, acquired_at, heartbeat_at)
SELECT name, owner, run_id, pid, acquired_at, heartbeat_at FROM app_locks;

DROP TABLE app_locks;
ALTER TABLE app_locks_rebuilt RENAME TO app_locks;
