-- lore/syncRuns reads newest first: ORDER BY started_at DESC, rowid DESC. An index declared
-- (started_at DESC) stores rowids ascending within a timestamp, so SQLite needed a temporary
-- B-tree for the tie-break and scanned every row. Ascending indexes walked backwards give exactly
-- (started_at DESC, rowid DESC), so LIMIT 20 reads 20 rows. Indexes only; no data changes.

DROP INDEX sync_runs_started;
CREATE INDEX sync_runs_started ON sync_runs (started_at);

DROP INDEX sync_runs_status_started;
CREATE INDEX sync_runs_status_started ON sync_runs (status, started_at);
