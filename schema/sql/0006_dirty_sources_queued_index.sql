-- The docs phase drains dirty_sources oldest first: ORDER BY queued_at, source_type, source_id
-- LIMIT n. Without an index on queued_at every batch scanned and sorted the whole queue, so a
-- drain of N keys cost O(N^2 / batch) (308 ms of a 10k-issue docs phase, growing with the
-- square). The index holds the primary key after queued_at, so it serves that ORDER BY as is and
-- LIMIT n reads n rows. Index only; no data changes.

CREATE INDEX dirty_sources_queued ON dirty_sources (queued_at);
