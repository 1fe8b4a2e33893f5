-- The standard sync's dependent-job queue, the run ledger shared by standard and surgical runs,
-- and the cross-process application locks.

-- A row is a job still to do; it is deleted when the job completes.
CREATE TABLE pending_dependent_fetches (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL,
    entity_type       TEXT    NOT NULL CHECK (entity_type IN ('issue', 'merge_request')),
    entity_iid        INTEGER NOT NULL,
    entity_id         INTEGER NOT NULL,
    job_type          TEXT    NOT NULL
        CHECK (job_type IN ('discussions', 'resource_events', 'mr_closes_issues', 'mr_diffs')),
    target_updated_at INTEGER,              -- the parent's updated_at the job brings dependents up to
    enqueued_at       INTEGER NOT NULL,
    locked_at         INTEGER,
    locked_by         TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_retry_at     INTEGER,
    last_error        TEXT,
    UNIQUE (project_id, entity_type, entity_iid, job_type)
);
CREATE INDEX pending_dependent_fetches_ready ON pending_dependent_fetches (next_retry_at, locked_at);

CREATE TABLE sync_runs (
    run_id                TEXT    PRIMARY KEY,
    mode                  TEXT    NOT NULL CHECK (mode IN ('standard', 'surgical')),
    phase                 TEXT    NOT NULL
        CHECK (phase IN ('preflight', 'ingest', 'dependents', 'docs', 'embed', 'done', 'failed')),
    failed_phase          TEXT,
    status                TEXT    NOT NULL
        CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'cancelled')),
    project               TEXT,
    requested_json        TEXT    NOT NULL DEFAULT '{}',
    started_at            INTEGER NOT NULL,
    heartbeat_at          INTEGER NOT NULL,
    finished_at           INTEGER,
    cancelled_at          INTEGER,
    counters_json         TEXT    NOT NULL DEFAULT '{}',
    stage_timings_json    TEXT    NOT NULL DEFAULT '{}',
    failures_json         TEXT    NOT NULL DEFAULT '[]',
    error_json            TEXT,
    surgical_summary_json TEXT,
    owner                 TEXT    NOT NULL,
    pid                   INTEGER NOT NULL
);
CREATE INDEX sync_runs_started ON sync_runs (started_at DESC);
CREATE INDEX sync_runs_status_started ON sync_runs (status, started_at DESC);

-- A row exists only while its lock is held; releasing deletes it.
CREATE TABLE app_locks (
    name         TEXT    PRIMARY KEY CHECK (name IN ('sync', 'embed')),
    owner        TEXT    NOT NULL,
    run_id       TEXT,
    pid          INTEGER NOT NULL,
    acquired_at  INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
