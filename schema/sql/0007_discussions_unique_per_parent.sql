-- A discussion is now unique per parent: UNIQUE (noteable_type, noteable_id, gitlab_id) replaces
-- UNIQUE (gitlab_id) and the discussions_noteable index, whose prefix it also serves.
--
-- Why: GitLab's discussion ids are 40-hex hashes, so the old unique index took every new
-- discussion at a random place. A sync writes a parent's threads together, and at 50k issues that
-- index was a third of the dependents phase's WAL frames, about one page per discussion. Keyed
-- under its parent, a parent's threads share a page, and one index does the work of two. Every
-- lookup by parent uses its prefix. GitLab never lists one discussion under two parents; if it
-- did, the second parent now gets its own copy instead of taking the discussion from the first.
--
-- SQLite cannot drop a table constraint, so the table is rebuilt in place: new table, rows copied
-- with their local ids (documents.source_id and notes.discussion_id point at them), old table
-- dropped, new one renamed. The migration runner turns foreign keys off around every migration
-- and runs PRAGMA foreign_key_check before committing, so dropping the old table cannot cascade
-- into notes, and a dangling reference rolls the whole migration back.

CREATE TABLE discussions_rebuilt (
    id              INTEGER PRIMARY KEY,            -- local id: documents.source_id of a discussion
    gitlab_id       TEXT    NOT NULL,               -- GitLab's 40-hex discussion id
    project_id      INTEGER NOT NULL,
    noteable_type   TEXT    NOT NULL CHECK (noteable_type IN ('issue', 'merge_request')),
    noteable_id     INTEGER NOT NULL,
    individual_note INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER,
    updated_at      INTEGER,
    UNIQUE (noteable_type, noteable_id, gitlab_id)
);

INSERT INTO discussions_rebuilt
    (id, gitlab_id, project_id, noteable_type, noteable_id, individual_note, created_at, updated_at)
SELECT id, gitlab_id, project_id, noteable_type, noteable_id, individual_note, created_at, updated_at
FROM discussions
ORDER BY id;

DROP TABLE discussions;  -- takes discussions_noteable with it
ALTER TABLE discussions_rebuilt RENAME TO discussions;
