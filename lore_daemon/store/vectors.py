"""The ``embeddings`` table: which documents need vectors, chunk vectors written per document.

A document's vectors are *current* for a ``VectorKey`` (model, dimensions, chunking) when its
chunk 0 row carries that key and the document's present ``content_hash``: all chunks of a document
are written in one savepoint, so chunk 0 stands for the set. Writing a document's new vectors
deletes its older rows (another model, older content) in the same savepoint: old vectors stay
until new ones are written. Vectors are float32 little-endian BLOBs.

Documents the provider refused are recorded in ``embedding_failures``; after ``PARK_ATTEMPTS``
failures for the same model and content the backfill skips them until the content changes or a
forced re-embed clears the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import apsw

PARK_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class VectorKey:
    model: str
    dims: int | None  # None: whatever the provider answers (a remote model without `dimensions`)
    chunking: str


@dataclass(frozen=True, slots=True)
class DocText:
    id: int
    source_type: str
    title: str
    content: str
    content_hash: str
    project_path: str | None


@dataclass(frozen=True, slots=True)
class VectorCounts:
    documents: int
    current: int  # documents whose vectors are current for the key
    parked: int  # documents the backfill skips after PARK_ATTEMPTS failures
    vectors: int  # chunk vectors of the key's model
    dims: int | None  # of the stored vectors of the key's model (a remote model's, before configured)


def _params(key: VectorKey) -> dict[str, object]:
    return {"model": key.model, "chunking": key.chunking, "dims": key.dims}


_CURRENT = """EXISTS (
    SELECT 1 FROM embeddings AS e
    WHERE e.document_id = d.id AND e.chunk_index = 0 AND e.model = :model AND e.chunking = :chunking
      AND e.content_hash = d.content_hash AND (:dims IS NULL OR e.dims = :dims))"""
_PARKED = """EXISTS (
    SELECT 1 FROM embedding_failures AS f
    WHERE f.document_id = d.id AND f.model = :model AND f.content_hash = d.content_hash
      AND f.attempts >= :park)"""


def pending_document_ids(conn: apsw.Connection, key: VectorKey, *, after_id: int, limit: int) -> list[int]:
    """Documents without current vectors (parked ones left out), by id, after ``after_id``."""
    sql = (
        f"SELECT d.id FROM documents AS d WHERE d.id > :after AND NOT {_CURRENT} AND NOT {_PARKED}"  # noqa: S608
        " ORDER BY d.id LIMIT :limit"
    )
    params = {**_params(key), "after": after_id, "limit": limit, "park": PARK_ATTEMPTS}
    return [row[0] for row in conn.execute(sql, params)]


def count_pending(conn: apsw.Connection, key: VectorKey) -> int:
    sql = f"SELECT count(*) FROM documents AS d WHERE NOT {_CURRENT} AND NOT {_PARKED}"  # noqa: S608
    row = conn.execute(sql, {**_params(key), "park": PARK_ATTEMPTS}).fetchone()
    return int(row[0]) if row else 0


def all_document_ids(conn: apsw.Connection, *, after_id: int, limit: int) -> list[int]:
    """Every document by id (a forced re-embed)."""
    sql = "SELECT id FROM documents WHERE id > ? ORDER BY id LIMIT ?"
    return [row[0] for row in conn.execute(sql, (after_id, limit))]


def count_documents(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM documents").fetchone()
    return int(row[0]) if row else 0


def vector_counts(conn: apsw.Connection, key: VectorKey) -> VectorCounts:
    params = {**_params(key), "park": PARK_ATTEMPTS}
    row = conn.execute(
        f"SELECT count(*), coalesce(sum({_CURRENT}), 0), coalesce(sum({_PARKED}), 0)"  # noqa: S608
        " FROM documents AS d",
        params,
    ).fetchone()
    vectors = conn.execute(
        "SELECT count(*), max(dims) FROM embeddings WHERE model = ? AND chunking = ?",
        (key.model, key.chunking),
    ).fetchone()
    assert row is not None and vectors is not None
    dims = key.dims if key.dims is not None else vectors[1]
    return VectorCounts(int(row[0]), int(row[1]), int(row[2]), int(vectors[0]), dims)


def load_texts(conn: apsw.Connection, ids: Sequence[int]) -> list[DocText]:
    """The documents' texts in the order of ``ids`` (ids that no longer exist are left out)."""
    sql = """
    SELECT d.id, d.source_type, d.title, d.content, d.content_hash, p.path_with_namespace
    FROM documents AS d LEFT JOIN projects AS p ON p.gitlab_id = d.project_id
    WHERE d.id IN (SELECT value FROM json_each(?))
    """
    found = {row[0]: DocText(*row) for row in conn.execute(sql, (json.dumps(list(ids)),))}
    return [found[i] for i in ids if i in found]


def reusable_vectors(
    conn: apsw.Connection, ids: Sequence[int], key: VectorKey
) -> dict[tuple[int, str], bytes]:
    """Existing vectors of the documents for the key, by (document id, chunk hash): a chunk whose
    text did not change keeps its vector when the rest of its document changed."""
    sql = """
    SELECT document_id, chunk_hash, vector FROM embeddings
    WHERE document_id IN (SELECT value FROM json_each(:ids)) AND model = :model AND chunking = :chunking
      AND (:dims IS NULL OR dims = :dims)
    """
    rows = conn.execute(sql, {**_params(key), "ids": json.dumps(list(ids))})
    return {(doc_id, chunk_hash): bytes(vector) for doc_id, chunk_hash, vector in rows}


def write_document_vectors(
    conn: apsw.Connection,
    doc_id: int,
    content_hash: str,
    key: VectorKey,
    dims: int,
    chunks: Sequence[tuple[int, str, bytes]],
    *,
    now_ms: int,
) -> bool:
    """Replace the document's vectors with ``chunks`` (index, hash, float32 bytes) in one savepoint.

    False (nothing written) when the document is gone or its content changed since it was read:
    it is dirty again and will be embedded when it has been regenerated.
    """
    with conn:
        row = conn.execute("SELECT content_hash FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None or row[0] != content_hash:
            return False
        conn.execute("DELETE FROM embeddings WHERE document_id = ?", (doc_id,))
        conn.executemany(
            "INSERT INTO embeddings (document_id, chunk_index, model, dims, chunk_hash, chunking,"
            " content_hash, vector, embedded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (doc_id, i, key.model, dims, h, key.chunking, content_hash, blob, now_ms)
                for i, h, blob in chunks
            ],
        )
        conn.execute("DELETE FROM embedding_failures WHERE document_id = ?", (doc_id,))
    return True


def record_failure(
    conn: apsw.Connection, doc_id: int, model: str, code: str, message: str, *, now_ms: int
) -> None:
    """Count a refusal for the document's present content (a new model or content starts at 1)."""
    conn.execute(
        """
        INSERT INTO embedding_failures (document_id, model, content_hash, attempts, code, message, failed_at)
        SELECT id, :model, content_hash, 1, :code, :message, :now FROM documents WHERE id = :doc
        ON CONFLICT (document_id) DO UPDATE SET
            attempts = CASE WHEN model = excluded.model AND content_hash = excluded.content_hash
                            THEN attempts + 1 ELSE 1 END,
            model = excluded.model, content_hash = excluded.content_hash, code = excluded.code,
            message = excluded.message, failed_at = excluded.failed_at
        """,
        {"doc": doc_id, "model": model, "code": code, "message": message, "now": now_ms},
    )


def clear_failures(conn: apsw.Connection) -> int:
    conn.execute("DELETE FROM embedding_failures")
    return conn.changes()


def generation(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT generation FROM embedding_state WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def iter_vectors(conn: apsw.Connection, key: VectorKey) -> Iterator[tuple[int, int, bytes]]:
    """(document id, dims, vector bytes) of every chunk vector of the key, current or not."""
    sql = """
    SELECT document_id, dims, vector FROM embeddings
    WHERE model = :model AND chunking = :chunking AND (:dims IS NULL OR dims = :dims)
    """
    yield from conn.execute(sql, _params(key))


def document_entities(conn: apsw.Connection, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """(kind ``issue``|``mr``, iid) of the entity each document belongs to (a discussion's parent)."""
    sql = """
    SELECT d.id, coalesce(d.source_type, ''), coalesce(i.iid, m.iid, pi.iid, pm.iid),
           CASE WHEN i.iid IS NOT NULL OR pi.iid IS NOT NULL THEN 'issue' ELSE 'mr' END
    FROM documents AS d
    LEFT JOIN issues AS i ON d.source_type = 'issue' AND i.gitlab_id = d.source_id
    LEFT JOIN merge_requests AS m ON d.source_type = 'merge_request' AND m.gitlab_id = d.source_id
    LEFT JOIN discussions AS x ON d.source_type = 'discussion' AND x.id = d.source_id
    LEFT JOIN issues AS pi ON x.noteable_type = 'issue' AND pi.gitlab_id = x.noteable_id
    LEFT JOIN merge_requests AS pm ON x.noteable_type = 'merge_request' AND pm.gitlab_id = x.noteable_id
    WHERE d.id IN (SELECT value FROM json_each(?))
    """
    out: dict[int, tuple[str, int]] = {}
    for doc_id, _source, iid, kind in conn.execute(sql, (json.dumps(list(ids)),)):
        if iid is not None:
            out[doc_id] = (kind, int(iid))
    return out
