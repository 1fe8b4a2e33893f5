"""Semantic ranking: a query's best documents by cosine similarity, chunks collapsed to documents.

``lore/search`` (modes ``semantic`` and ``hybrid``) calls ``semantic_search`` with the ids its
filters allow; it raises ``EmbeddingError`` when the provider cannot embed the query, which the
search turns into a lexical fallback that says so. ``rank_vector`` is the part that runs on a
reader thread: refresh the index if the table moved, then brute-force the matrix.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from dataclasses import dataclass

import apsw
import numpy as np

from lore_daemon.embedding.index import Matrix, VectorIndex
from lore_daemon.embedding.provider import misconfigured
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.store.connection import Database


@dataclass(frozen=True, slots=True)
class SemanticHit:
    document_id: int
    score: float  # cosine similarity of the document's best chunk
    rank: int  # 1-based


def rank_vector(
    conn: apsw.Connection, *, index: VectorIndex, query: Matrix, limit: int,
    allowed_ids: Collection[int] | None = None,
) -> list[SemanticHit]:
    index.refresh(conn)
    allowed = None
    if allowed_ids is not None:
        allowed = np.fromiter(allowed_ids, dtype=np.int64, count=len(allowed_ids))
    return [
        SemanticHit(doc, score, rank)
        for rank, (doc, score) in enumerate(index.search(query, limit=limit, allowed=allowed), start=1)
    ]


async def semantic_search(
    db: Database, service: EmbeddingService, query: str, *, limit: int,
    allowed_ids: Collection[int] | None = None,
) -> list[SemanticHit]:
    """The ``limit`` documents nearest to ``query``; only ``allowed_ids`` when given."""
    if service.index is None:
        raise misconfigured(
            'Semantic search needs an embedding provider (embedding.provider is "none").',
            'Set embedding.provider to "local", "ollama" or "openai" and run `lore sync`.',
        )
    vector = await asyncio.to_thread(service.embed, [query], kind="query")
    index = service.index
    return await db.read(
        functools.partial(rank_vector, index=index, query=vector[0], limit=limit, allowed_ids=allowed_ids)
    )
