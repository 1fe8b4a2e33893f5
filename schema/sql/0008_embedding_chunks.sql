-- Embeddings per chunk (SPEC §13): a document is cut into chunks that fit the model and each
-- chunk's vector is kept, keyed by (document_id, chunk_index, model, dims, chunk_hash), with the
-- chunking settings and the document's content hash it was computed from, so a vector is
-- "current" only for the same content, model, dimensions and chunking.
--
-- The table is rebuilt in place (SQLite's procedure for a change ALTER TABLE cannot make). A row
-- of the old one-vector-per-document shape becomes chunk 0 with chunking 'legacy': it never counts
-- as current, so it is replaced when the document is next embedded, and it stays until then.

CREATE TABLE embeddings_new (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_index  INTEGER NOT NULL,
    model        TEXT    NOT NULL,
    dims         INTEGER NOT NULL,
    chunk_hash   TEXT    NOT NULL,
    chunking     TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    vector       BLOB    NOT NULL,  -- dims float32 values, little-endian
    embedded_at  INTEGER NOT NULL,
    UNIQUE (document_id, chunk_index, model, dims, chunk_hash)
);

INSERT INTO embeddings_new
    (document_id, chunk_index, model, dims, chunk_hash, chunking, content_hash, vector, embedded_at)
SELECT document_id, 0, model, dims, content_hash, 'legacy', content_hash, vector, embedded_at
FROM embeddings;

DROP TABLE embeddings;
ALTER TABLE embeddings_new RENAME TO embeddings;

-- A counter every write to `embeddings` bumps (cascaded deletes included), so a daemon holding
-- the vectors in memory can tell in one read whether the table changed under it.
CREATE TABLE embedding_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO embedding_state (id, generation) VALUES (1, 0);

CREATE TRIGGER embeddings_insert_generation AFTER INSERT ON embeddings BEGIN
    UPDATE embedding_state SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER embeddings_delete_generation AFTER DELETE ON embeddings BEGIN
    UPDATE embedding_state SET generation = generation + 1 WHERE id = 1;
END;

-- Documents the provider refused: the backfill skips a document once it has failed
-- `attempts` times for the same model and content; a forced re-embed clears the table.
CREATE TABLE embedding_failures (
    document_id  INTEGER PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    model        TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    code         TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    failed_at    INTEGER NOT NULL
);
