"""The in-memory vector index: best chunk per document, filters, kept in step with the table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import numpy as np
import pytest

from lore_daemon.embedding.index import VectorIndex
from lore_daemon.store import migrate, open_connection, vectors
from lore_daemon.store.vectors import VectorKey

KEY = VectorKey("test:unit", 4, "v1:800:120")


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[apsw.Connection]:
    connection = open_connection(tmp_path / "lore.db")
    migrate(connection)
    with connection:
        for doc_id in range(1, 7):
            connection.execute(
                "INSERT INTO documents (id, source_type, source_id, title, content, content_hash,"
                " generated_at) VALUES (?, 'issue', ?, ?, 'text', ?, 0)",
                (doc_id, doc_id, f"#{doc_id} t", f"h{doc_id}"),
            )
    yield connection
    connection.close()


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _write(conn: apsw.Connection, doc_id: int, *rows: np.ndarray) -> None:
    chunks = [(i, f"c{doc_id}-{i}", r.astype("<f4").tobytes()) for i, r in enumerate(rows)]
    with conn:
        assert vectors.write_document_vectors(conn, doc_id, f"h{doc_id}", KEY, 4, chunks, now_ms=1)


def test_best_chunk_per_document_and_filters(conn: apsw.Connection) -> None:
    _write(conn, 1, _unit(1, 0, 0, 0), _unit(0, 1, 0, 0))  # its second chunk matches best
    _write(conn, 2, _unit(0.9, 0.1, 0, 0))
    _write(conn, 3, _unit(0, 0, 1, 0))
    index = VectorIndex(KEY)
    assert index.refresh(conn) and index.rows == 4
    query = _unit(0, 1, 0, 0)
    hits = index.search(query, limit=10)
    assert [doc for doc, _ in hits] == [1, 2, 3], "one hit per document, its best chunk's score"
    assert hits[0][1] == pytest.approx(1.0)
    assert [doc for doc, _ in index.search(query, limit=1)] == [1]
    allowed = index.search(query, limit=10, allowed=np.array([3, 2], dtype=np.int64))
    assert [doc for doc, _ in allowed] == [2, 3]
    assert index.search(query, limit=5, allowed=np.array([], dtype=np.int64)) == []
    assert index.search(_unit(1, 0, 0, 0, 0), limit=5) == [], "a query of other dimensions finds nothing"


def test_own_writes_apply_as_a_delta_and_match_a_reload(conn: apsw.Connection) -> None:
    _write(conn, 1, _unit(1, 0, 0, 0))
    index = VectorIndex(KEY)
    index.refresh(conn)
    before = vectors.generation(conn)
    _write(conn, 1, _unit(0, 0, 0, 1))  # document 1 re-embedded
    _write(conn, 4, _unit(0, 0, 1, 0), _unit(0, 1, 0, 0))
    after = vectors.generation(conn)
    added = [(1, np.vstack([_unit(0, 0, 0, 1)])), (4, np.vstack([_unit(0, 0, 1, 0), _unit(0, 1, 0, 0)]))]
    index.apply([1, 4], added, before=before, after=after)
    assert not index.refresh(conn), "the generation the delta ended at is the table's: no reload"
    fresh = VectorIndex(KEY)
    fresh.refresh(conn)
    for query in (_unit(1, 0, 0, 0), _unit(0, 0, 0, 1), _unit(0, 1, 1, 0)):
        got = sorted((round(score, 5), doc) for doc, score in index.search(query, limit=5))
        assert got == sorted((round(score, 5), doc) for doc, score in fresh.search(query, limit=5))


def test_any_other_write_makes_the_next_search_reload(conn: apsw.Connection, tmp_path: Path) -> None:
    _write(conn, 1, _unit(1, 0, 0, 0))
    _write(conn, 2, _unit(0, 1, 0, 0))
    index = VectorIndex(KEY)
    index.refresh(conn)
    other = open_connection(tmp_path / "lore.db")  # another process's writer
    with other:
        other.execute("DELETE FROM documents WHERE id = 2")  # cascades to its vectors
    other.close()
    stale_delta_base = index._generation
    index.apply([], [], before=(stale_delta_base or 0) - 1, after=99)  # a delta that does not follow on
    assert index.refresh(conn), "the table moved: reloaded"
    assert [doc for doc, _ in index.search(_unit(0, 1, 0, 0), limit=5)] == [1]


def test_replaced_rows_are_compacted_away(conn: apsw.Connection) -> None:
    index = VectorIndex(KEY)
    index.refresh(conn)
    generation = vectors.generation(conn)
    for round_ in range(1200):  # re-embed one document many times: dead rows pile up, then go
        rows = np.vstack([_unit(1, round_ % 7, 0, 1)])
        index.apply([5], [(5, rows)], before=generation, after=generation + 1)
        generation += 1
    assert index.rows == 1 and index._n < 1100
    assert [doc for doc, _ in index.search(_unit(1, 0, 0, 1), limit=5)] == [5]
