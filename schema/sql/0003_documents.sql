-- Searchable documents (one per issue, MR and discussion), their FTS5 index kept in step by
-- triggers, the dirty-source queue that says which documents need regenerating, and embeddings.

CREATE TABLE documents (
    id           INTEGER PRIMARY KEY,
    source_type  TEXT    NOT NULL CHECK (source_type IN ('issue', 'merge_request', 'discussion')),
    source_id    INTEGER NOT NULL,
    project_id   INTEGER,
    title        TEXT    NOT NULL,
    content      TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    url          TEXT,
    generated_at INTEGER NOT NULL,
    UNIQUE (source_type, source_id)
);

CREATE VIRTUAL TABLE documents_fts USING fts5 (
    title, content, content = 'documents', content_rowid = 'id', tokenize = 'porter unicode61'
);

CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
END;

CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, title, content)
    VALUES ('delete', old.id, old.title, old.content);
END;

CREATE TRIGGER documents_fts_update AFTER UPDATE OF title, content ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, title, content)
    VALUES ('delete', old.id, old.title, old.content);
    INSERT INTO documents_fts (rowid, title, content) VALUES (new.id, new.title, new.content);
END;

-- Keyed by the source, with no id column: re-dirtying a source UPSERTs its one row.
CREATE TABLE dirty_sources (
    source_type   TEXT    NOT NULL CHECK (source_type IN ('issue', 'merge_request', 'discussion')),
    source_id     INTEGER NOT NULL,
    queued_at     INTEGER NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    PRIMARY KEY (source_type, source_id)
) WITHOUT ROWID;

CREATE TABLE embeddings (
    document_id  INTEGER PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    model        TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    dims         INTEGER NOT NULL,
    vector       BLOB    NOT NULL,
    embedded_at  INTEGER NOT NULL
);
