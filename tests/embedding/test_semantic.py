"""Semantic ranking over a real mirror: meaning without shared words, filters, best chunk per
document, and the typed failure a search turns into a lexical fallback."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from lore_daemon import protocol
from lore_daemon.config_embedding import EmbeddingConfig, resolve_embedding
from lore_daemon.embedding.local import LocalProvider
from lore_daemon.embedding.semantic import semantic_search
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.errors import EmbeddingError
from lore_daemon.sim import SimServer
from lore_daemon.store import vectors
from lore_daemon.sync.surgical import run_surgical_sync
from tests.bench._corpus import CORPUS_ONLY, build_corpus_engine, entity_documents
from tests.support.sim import sim_fixture

CORPUS = "acme/brightday"


sim = sim_fixture(CORPUS_ONLY, scope="module")


async def test_meaning_filters_and_fallback(
    tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    engine = build_corpus_engine(tmp_path, sim, embedding='provider = "local"', provider=local_model)
    try:
        await run_surgical_sync(
            engine, protocol.SyncSurgicalParams(project=CORPUS, issues=list(range(1, 13)))
        )
        service = engine.embeddings
        assert service is not None
        battery = engine.db.read_sync(lambda c: entity_documents(c, "#1"))
        query = "launcher tile outdated during energy conservation"  # no word of issue #1's text
        hits = await semantic_search(engine.db, service, query, limit=5)
        assert hits[0].document_id in battery and [h.rank for h in hits] == [1, 2, 3, 4, 5]
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
        assert len({h.document_id for h in hits}) == len(hits), "one hit per document"

        others = engine.db.read_sync(lambda c: entity_documents(c, "#7") | entity_documents(c, "#9"))
        filtered = await semantic_search(engine.db, service, query, limit=5, allowed_ids=others)
        assert filtered and {h.document_id for h in filtered} <= others

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        (tmp_path / "down").mkdir()
        unreachable = (
            f'provider = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\ntimeout_ms = 300'
        )
        down = build_corpus_engine(tmp_path / "down", sim, embedding=unreachable)
        try:
            assert down.embeddings is not None
            with pytest.raises(EmbeddingError) as err:
                await semantic_search(down.db, down.embeddings, query, limit=5)
            assert err.value.code == "EMBEDDING_UNAVAILABLE"
            assert down.embeddings.health().state == "unavailable"
        finally:
            await down.aclose()
        off = EmbeddingService(resolve_embedding(EmbeddingConfig(provider="none"), None, {}))
        with pytest.raises(EmbeddingError) as none:
            await semantic_search(engine.db, off, query, limit=5)
        assert none.value.code == "EMBEDDING_MISCONFIGURED"
        key = service.key
        assert key is not None
        counts = engine.db.read_sync(lambda c: vectors.vector_counts(c, key))
        assert counts.current == counts.documents > 12
    finally:
        await engine.aclose()
