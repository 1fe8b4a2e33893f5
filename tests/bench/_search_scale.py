"""Semantic search over a large mirror, in a process of its own (so its RSS is the daemon's).

``python tests/bench/_search_scale.py DIR DOCS build`` builds DIR/lore.db with DOCS documents whose
chunk vectors are random unit vectors (the search's cost does not depend on their values; building
50,000 real ones would take the model over an hour here). ``... DIR DOCS measure``, in a fresh
process, does what a daemon does: load the model, load the vector index, embed queries with the
real model and rank them, embed a batch of documents. It prints one JSON line: timings,
percentiles and memory (VmRSS / VmHWM, MB).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lore_daemon.config_embedding import EmbeddingConfig, resolve_embedding
from lore_daemon.embedding.semantic import rank_vector
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.store.connection import Database

CHUNKS_PER_DOC = 1.25  # measured on the curated corpus: 141 chunks for 113 documents
QUERIES = [
    "widget frozen on low battery", "cannot sign in after password change", "crash when rotating",
    "reminders arrive late", "sync uses mobile data", "dark mode contrast", "duplicate calendar events",
    "memory leak in image cache", "subscription restore fails", "translate into German",
]


def memory_mb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0]) // 1024
    return out


def build(db: Database, docs: int, service: EmbeddingService) -> None:
    key = service.key
    assert key is not None
    rng = np.random.default_rng(7)

    def fill(conn) -> None:  # type: ignore[no-untyped-def]
        with conn:
            conn.executemany(
                "INSERT INTO documents (id, source_type, source_id, title, content, content_hash,"
                " generated_at) VALUES (?, 'issue', ?, ?, ?, ?, 0)",
                ((i, i, f"#{i} Title {i}", f"Body of document {i}", f"h{i}") for i in range(1, docs + 1)),
            )
            rows = []
            for doc in range(1, docs + 1):
                for chunk in range(2 if rng.random() < CHUNKS_PER_DOC - 1 else 1):
                    vec = rng.standard_normal(384).astype(np.float32)
                    vec /= np.linalg.norm(vec)
                    rows.append((doc, chunk, key.model, 384, f"c{doc}-{chunk}", key.chunking, f"h{doc}",
                                 vec.astype("<f4").tobytes(), 0))
            conn.executemany(
                "INSERT INTO embeddings (document_id, chunk_index, model, dims, chunk_hash, chunking,"
                " content_hash, vector, embedded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows,
            )

    db.write_sync(fill)


def main(folder: str, docs: int, mode: str) -> None:
    db = Database(Path(folder) / "lore.db")
    db.open()
    service = EmbeddingService(resolve_embedding(EmbeddingConfig(), None, {}))
    if mode == "build":
        build(db, docs, service)
        db.close()
        return
    base = memory_mb()
    started = time.perf_counter()
    service.provider()
    load_model_ms = (time.perf_counter() - started) * 1000
    after_model = memory_mb()
    index = service.index
    assert index is not None
    started = time.perf_counter()
    db.read_sync(index.refresh)
    load_index_ms = (time.perf_counter() - started) * 1000
    after_index = memory_mb()
    total, rank_only = [], []
    allowed = list(range(1, docs + 1, 5))  # a filter that keeps a fifth of the documents
    filtered = []
    for round_ in range(10):
        for query in QUERIES:
            t0 = time.perf_counter()
            vector = service.embed([query], kind="query")[0]
            t1 = time.perf_counter()
            hits = db.read_sync(lambda c, v=vector: rank_vector(c, index=index, query=v, limit=20))
            t2 = time.perf_counter()
            assert len(hits) == 20
            total.append((t2 - t0) * 1000)
            rank_only.append((t2 - t1) * 1000)
            if round_ < 3:
                t3 = time.perf_counter()
                db.read_sync(
                    lambda c, v=vector: rank_vector(c, index=index, query=v, limit=20, allowed_ids=allowed)
                )
                filtered.append((time.perf_counter() - t3) * 1000)
    batch = ["A realistic paragraph about a widget that stops refreshing on low battery. " * 12] * 8
    service.embed(batch, kind="document")
    after_batch = memory_mb()

    def pct(values: list[float], q: float) -> float:
        return round(sorted(values)[min(len(values) - 1, int(q * len(values)))], 1)

    print(json.dumps({
        "documents": docs, "vectors": index.rows, "load_model_ms": round(load_model_ms),
        "load_index_ms": round(load_index_ms),
        "search_ms": {
            "p50": pct(total, 0.5), "p99": pct(total, 0.99), "mean": round(statistics.mean(total), 1)
        },
        "rank_only_ms": {"p50": pct(rank_only, 0.5), "p99": pct(rank_only, 0.99)},
        "filtered_rank_ms": {"p50": pct(filtered, 0.5), "p99": pct(filtered, 0.99)},
        "memory_mb": {"start": base, "model_loaded": after_model, "index_loaded": after_index,
                      "after_batch_of_8": after_batch},
    }))
    db.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
