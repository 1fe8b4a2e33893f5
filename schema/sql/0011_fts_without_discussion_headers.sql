-- The full-text index no longer indexes the header of a discussion document.
--
-- A discussion's document starts with a header — "Discussion on #12: <the parent's title>",
-- "Project: …", "Resolved: …" — then a blank line, then its notes (store/render_text.py), and its
-- title column repeats the parent's title. So every word of an issue's title also matched every
-- one of its threads: on the 50k-issue mirror, 82% of the documents matching a title word were
-- discussions matching through that copy (22,221 documents for "memory leak", 3,928 without it).
-- lore/search ranks every matching document (FTS5 bm25, ~0.6 us each), shows one hit per entity
-- and reaches the entity through its own document anyway: the copies cost 4-5x the time and let
-- an issue's short threads outrank the issue itself. Measured side by side on that mirror, the
-- bm25 candidate query: "memory leak" 24 -> 5 ms, "crash" 18 -> 4 ms, "settings page" 24 -> 6 ms.
--
-- The documents themselves do not change (their text, hashes and embeddings stay as rendered,
-- header included): only what FTS5 indexes does. documents_fts reads its external content through
-- the view documents_indexed: for a discussion, an empty title and the content after the first
-- blank line (its notes); for every other document, title and content as they are. The index is
-- derived data, rebuilt from documents in this same transaction; the triggers keep it in step
-- with the same transformation (the delete side cannot read the deleted row through the view, so
-- it spells the expressions out again on old.*).

CREATE VIEW documents_indexed AS
SELECT id,
       CASE WHEN source_type = 'discussion' THEN '' ELSE title END AS title,
       CASE WHEN source_type = 'discussion' AND instr(content, char(10) || char(10)) > 0
            THEN substr(content, instr(content, char(10) || char(10)) + 2)
            ELSE content END AS content
FROM documents;

DROP TRIGGER documents_fts_insert;
DROP TRIGGER documents_fts_delete;
DROP TRIGGER documents_fts_update;
DROP TABLE documents_fts;

CREATE VIRTUAL TABLE documents_fts USING fts5 (
    title, content, content = 'documents_indexed', content_rowid = 'id', tokenize = 'porter unicode61'
);
INSERT INTO documents_fts (documents_fts) VALUES ('rebuild');

CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts (rowid, title, content)
    SELECT id, title, content FROM documents_indexed WHERE id = new.id;
END;

CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, title, content)
    VALUES ('delete', old.id,
            CASE WHEN old.source_type = 'discussion' THEN '' ELSE old.title END,
            CASE WHEN old.source_type = 'discussion' AND instr(old.content, char(10) || char(10)) > 0
                 THEN substr(old.content, instr(old.content, char(10) || char(10)) + 2)
                 ELSE old.content END);
END;

CREATE TRIGGER documents_fts_update AFTER UPDATE OF title, content ON documents BEGIN
    INSERT INTO documents_fts (documents_fts, rowid, title, content)
    VALUES ('delete', old.id,
            CASE WHEN old.source_type = 'discussion' THEN '' ELSE old.title END,
            CASE WHEN old.source_type = 'discussion' AND instr(old.content, char(10) || char(10)) > 0
                 THEN substr(old.content, instr(old.content, char(10) || char(10)) + 2)
                 ELSE old.content END);
    INSERT INTO documents_fts (rowid, title, content)
    SELECT id, title, content FROM documents_indexed WHERE id = new.id;
END;
