"""The vector index: one key's chunk vectors as a float32 matrix the daemon keeps in memory.

Brute force (matrix @ query) over all chunks, chunks collapsed to their best-scoring document.
Measured faster than sqlite-vec here (EMBEDDINGS.md; docs/benchmarks.md for 50,000 documents).

In step with the table: ``embedding_state.generation`` is bumped by triggers on every insert or
delete in ``embeddings`` (cascades included). A search first reads it (one row); if it differs
from the generation the matrix was loaded at, the matrix is reloaded. The embed phase applies its
own writes as a delta (``apply``) with the generation before and after its transaction, so a
backfill does not reload the matrix after every batch; any other writer shows up as a gap and
causes a reload. Rows of replaced documents are marked dead and compacted away once they are a
quarter of the matrix. Capacity grows by half, so appends are amortised.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import apsw
import numpy as np
import numpy.typing as npt

from lore_daemon.store import vectors
from lore_daemon.store.vectors import VectorKey

Matrix = npt.NDArray[np.float32]
_MIN_COMPACT = 1024


def _load(conn: apsw.Connection, key: VectorKey) -> tuple[Matrix, list[int]]:
    """Every vector of the key into one preallocated matrix (no intermediate copies: the peak is
    the matrix itself). With no dimensions configured, the first row's decide."""
    row = conn.execute(
        "SELECT count(*) FROM embeddings WHERE model = ? AND chunking = ?", (key.model, key.chunking)
    ).fetchone()
    count = int(row[0]) if row else 0
    dims = key.dims
    matrix: Matrix = np.zeros((0, dims or 0), dtype=np.float32)
    docs: list[int] = []
    for doc_id, row_dims, blob in vectors.iter_vectors(conn, key):
        if dims is None:
            dims = row_dims
        if row_dims != dims:
            continue
        if not docs:
            matrix = np.empty((count, dims), dtype=np.float32)
        matrix[len(docs)] = np.frombuffer(blob, dtype="<f4")
        docs.append(doc_id)
    return matrix[: len(docs)], docs


class VectorIndex:
    def __init__(self, key: VectorKey) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._dims = 0
        self._vecs: Matrix = np.zeros((0, 0), dtype=np.float32)
        self._docs = np.zeros(0, dtype=np.int64)
        self._alive = np.zeros(0, dtype=bool)
        self._n = 0
        self._dead = 0
        self._rows_of: dict[int, list[int]] = {}

    # ------------------------------------------------------------------------------ loading

    @property
    def loaded(self) -> bool:
        return self._generation is not None

    @property
    def rows(self) -> int:
        return self._n - self._dead

    def refresh(self, conn: apsw.Connection) -> bool:
        """Reload from the table if it changed since the matrix was built; True if it reloaded."""
        if self._generation is not None and vectors.generation(conn) == self._generation:
            return False
        with conn:  # one read snapshot: the generation and the rows agree
            generation = vectors.generation(conn)
            matrix, docs = _load(conn, self.key)
        with self._lock:
            self._reset(matrix, docs)
            self._generation = generation
        return True

    def _reset(self, matrix: Matrix, docs: Sequence[int]) -> None:
        self._vecs = matrix
        self._dims = matrix.shape[1]
        self._docs = np.asarray(docs, dtype=np.int64)
        self._alive = np.ones(len(docs), dtype=bool)
        self._n = len(docs)
        self._dead = 0
        self._rows_of = {}
        for row, doc in enumerate(docs):
            self._rows_of.setdefault(doc, []).append(row)

    def invalidate(self) -> None:
        with self._lock:
            self._generation = None

    # ------------------------------------------------------------------------------ updates

    def apply(
        self, replaced: Iterable[int], added: Sequence[tuple[int, Matrix]], *, before: int, after: int
    ) -> None:
        """The embed phase's own transaction: ``replaced`` documents lost their rows, ``added``
        (document, chunk vectors) were written; the table went from generation ``before`` to ``after``."""
        with self._lock:
            if self._generation is None:
                return  # not loaded: the next search loads everything
            if self._generation != before or any(m.shape[1] != self._dims for _, m in added if self._n):
                self._generation = None  # someone else wrote meanwhile: reload on the next search
                return
            for doc in replaced:
                for row in self._rows_of.pop(doc, []):
                    if self._alive[row]:
                        self._alive[row] = False
                        self._dead += 1
            for doc, rows in added:
                self._append(doc, rows)
            self._generation = after
            if self._dead >= max(_MIN_COMPACT, self._n // 4):
                self._compact()

    def _append(self, doc: int, rows: Matrix) -> None:
        needed = self._n + len(rows)
        if self._n == 0 and self._vecs.shape[1] != rows.shape[1]:
            self._vecs = np.zeros((0, rows.shape[1]), np.float32)
            self._dims = rows.shape[1]
        if needed > len(self._vecs):
            capacity = max(needed, len(self._vecs) * 3 // 2 + 64)
            grown = np.zeros((capacity, self._dims), dtype=np.float32)
            grown[: self._n] = self._vecs[: self._n]
            self._vecs = grown
            self._docs = np.resize(self._docs, capacity)
            self._alive = np.resize(self._alive, capacity)
        start = self._n
        self._vecs[start:needed] = rows
        self._docs[start:needed] = doc
        self._alive[start:needed] = True
        self._rows_of.setdefault(doc, []).extend(range(start, needed))
        self._n = needed

    def _compact(self) -> None:
        keep = np.flatnonzero(self._alive[: self._n])
        self._reset(np.ascontiguousarray(self._vecs[keep]), self._docs[keep].tolist())

    # ------------------------------------------------------------------------------ search

    def search(
        self, query: Matrix, *, limit: int, allowed: npt.NDArray[np.int64] | None = None
    ) -> list[tuple[int, float]]:
        """The ``limit`` best documents for a unit ``query`` vector: (document id, cosine of its
        best chunk), best first. ``allowed`` (sorted or not) restricts the documents."""
        with self._lock:
            n = self._n
            if n == 0 or limit <= 0 or query.shape[-1] != self._dims:
                return []
            scores = self._vecs[:n] @ query.reshape(-1)
            docs = self._docs[:n]
            if self._dead or allowed is not None:  # rank only the candidate rows
                mask = self._alive[:n].copy()
                if allowed is not None:  # a lookup table by document id: O(n), unlike np.isin's sort
                    top = max(int(np.max(docs)), int(np.max(allowed)) if allowed.size else 0)
                    lookup = np.zeros(top + 1, dtype=np.bool_)
                    lookup[allowed] = True
                    mask &= lookup[docs]
                rows = np.flatnonzero(mask)
                scores, docs = scores[rows], docs[rows]
        return _best_documents(scores, docs, limit)


def _best_documents(scores: Matrix, docs: npt.NDArray[np.int64], limit: int) -> list[tuple[int, float]]:
    """The ``limit`` documents with the best chunk scores, best first; the top k chunks are taken
    with a partial sort, and k grows until enough distinct documents are among them."""
    m = len(scores)
    if m == 0:
        return []
    k = min(m, limit * 4 + 16)
    while True:
        top = np.argpartition(scores, m - k)[m - k :]
        top = top[np.argsort(-scores[top], kind="stable")]
        hits: list[tuple[int, float]] = []
        seen: set[int] = set()
        for row in top:
            doc = int(docs[row])
            if doc not in seen:
                seen.add(doc)
                hits.append((doc, float(scores[row])))
                if len(hits) == limit:
                    return hits
        if k >= m:
            return hits
        k = min(m, k * 4)
