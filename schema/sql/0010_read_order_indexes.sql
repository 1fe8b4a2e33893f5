-- lore/list reads issues and MRs newest first across every project: ORDER BY updated_at (or
-- created_at), then the GitLab id, LIMIT n. The only existing order index is per project
-- (project_id, updated_at), so a list without a project filter scanned and sorted every row
-- (22 ms for a page of 50 at 2k issues, growing with the mirror). An index on the column alone
-- holds the rowid (the GitLab id) after it, so it serves that ORDER BY as is, in both directions,
-- and a keyset page reads limit + 1 rows. Indexes only; no data changes.

CREATE INDEX issues_updated ON issues (updated_at);
CREATE INDEX issues_created ON issues (created_at);
CREATE INDEX merge_requests_updated ON merge_requests (updated_at);
CREATE INDEX merge_requests_created ON merge_requests (created_at);
