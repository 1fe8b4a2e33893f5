"""One step of the embed phase: a few documents read, chunked, embedded and written.

Reads go through a reader connection and the model runs on a worker thread, so neither holds the
writer; only the write of a step's vectors (one short transaction) does. A chunk whose text is
unchanged keeps its stored vector (unless the run forces a re-embed). When the provider refuses a
batch (``EMBEDDING_FAILED``) its documents are embedded one by one to find the ones it refuses;
any other provider error stops the step and is raised.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field

import apsw
import numpy as np

from lore_daemon.embedding.chunking import Chunk, chunk_document
from lore_daemon.embedding.index import Matrix
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.errors import EmbeddingError
from lore_daemon.store import vectors
from lore_daemon.store.connection import Database
from lore_daemon.store.vectors import DocText, VectorKey
from lore_daemon.sync.context import RunContext
from lore_daemon.timeutil import now_ms


@dataclass
class StepResult:
    written: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)  # changed or deleted since read: left for later
    refused: dict[int, EmbeddingError] = field(default_factory=dict)
    chunks_embedded: int = 0
    chunks_reused: int = 0


@dataclass
class _Doc:
    text: DocText
    chunks: list[Chunk]
    vectors: list[Matrix | None]


Stored = dict[tuple[int, str], bytes]


def _read(conn: apsw.Connection, ids: list[int], key: VectorKey, reuse: bool) -> tuple[list[DocText], Stored]:
    texts = vectors.load_texts(conn, ids)
    return texts, (vectors.reusable_vectors(conn, ids, key) if reuse else {})


async def _embed_texts(service: EmbeddingService, texts: list[str]) -> Matrix:
    out: Matrix = await asyncio.to_thread(service.embed, texts, kind="document")
    return out


async def _embed_docs(service: EmbeddingService, docs: list[_Doc], result: StepResult) -> list[_Doc]:
    """Fill the missing chunk vectors; documents the provider refuses go to ``result.refused``."""
    wanted = [(d, i) for d in docs for i, v in enumerate(d.vectors) if v is None]
    size = service.embedding.batch_size or 8
    try:
        for start in range(0, len(wanted), size):
            part = wanted[start : start + size]
            rows = await _embed_texts(service, [d.chunks[i].text for d, i in part])
            for (doc, i), row in zip(part, rows, strict=True):
                doc.vectors[i] = row
            result.chunks_embedded += len(part)
        return docs
    except EmbeddingError as exc:
        if exc.code != "EMBEDDING_FAILED" or len(docs) == 1:
            if exc.code == "EMBEDDING_FAILED":
                result.refused[docs[0].text.id] = exc
                return []
            raise
    kept: list[_Doc] = []
    for doc in docs:  # find the documents it refuses
        if await _embed_docs(service, [doc], result):
            kept.append(doc)
    return kept


def _write(
    conn: apsw.Connection,
    ctx: RunContext,
    docs: list[_Doc],
    key: VectorKey,
    refused: dict[int, EmbeddingError],
) -> tuple[list[int], list[int], int, int]:
    """One transaction: every document's vectors, refusals recorded; generation before and after."""
    written: list[int] = []
    stale: list[int] = []
    with conn:
        ctx.check_cancelled()
        before = vectors.generation(conn)
        now = now_ms()
        for doc in docs:
            blobs = [
                (c.index, c.hash, np.asarray(v, dtype="<f4").tobytes())
                for c, v in zip(doc.chunks, doc.vectors, strict=True)
            ]
            dims = len(doc.vectors[0]) if doc.vectors and doc.vectors[0] is not None else 0
            ok = vectors.write_document_vectors(
                conn, doc.text.id, doc.text.content_hash, key, dims, blobs, now_ms=now
            )
            (written if ok else stale).append(doc.text.id)
        for doc_id, exc in refused.items():
            vectors.record_failure(conn, doc_id, key.model, exc.code, exc.message, now_ms=now)
        after = vectors.generation(conn)
    return written, stale, before, after


def _matrix(rows: list[Matrix | None]) -> Matrix:
    out: Matrix = np.vstack([row for row in rows if row is not None]).astype(np.float32)
    return out


async def embed_step(
    ctx: RunContext, db: Database, service: EmbeddingService, ids: list[int], *, reuse: bool
) -> StepResult:
    """Embed the documents ``ids`` (those still existing) and write their vectors."""
    key = service.key
    assert key is not None and service.index is not None
    result = StepResult()
    texts, stored = await db.read(functools.partial(_read, ids=ids, key=key, reuse=reuse))
    docs: list[_Doc] = []
    for text in texts:
        chunks = chunk_document(text.title, text.content, text.project_path, service.plan)
        found = [stored.get((text.id, c.hash)) for c in chunks]
        vecs: list[Matrix | None] = [None if b is None else np.frombuffer(b, dtype="<f4") for b in found]
        result.chunks_reused += sum(v is not None for v in vecs)
        docs.append(_Doc(text, chunks, vecs))
    docs = await _embed_docs(service, docs, result)
    written, stale, before, after = await ctx.write(
        functools.partial(_write, ctx=ctx, docs=docs, key=key, refused=result.refused)
    )
    result.written, result.stale = written, stale
    by_id = {d.text.id: d for d in docs}
    added = [(doc_id, _matrix(by_id[doc_id].vectors)) for doc_id in written]
    service.index.apply(written, added, before=before, after=after)
    return result
