"""The embed phase with the real local model: exactly the given documents, under the ``embed`` lock
(never the ``sync`` lock), each chunk's vector keyed as docs/search.md says."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from lore_daemon.embedding.chunking import chunk_document
from lore_daemon.embedding.local import LocalProvider
from lore_daemon.embedding.provider import TextKind, Vectors
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.embed import run_embed_phase
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support.engine import Progress

from .children import lock_held_by_another_process
from .conftest import build_engine, connect, rows, surgical

LOCAL = 'provider = "local"'


class LockWatchingModel:
    """The real model; before each batch it records which locks are held (read by another
    connection, as another process would see them)."""

    def __init__(self, model: LocalProvider, db_path: Path) -> None:
        self.model, self.db_path = model, db_path
        self.name, self.model_key = model.name, model.model_key
        self.locks_seen: list[tuple[str, str | None]] = []

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        conn = connect(self.db_path)
        try:
            self.locks_seen += [tuple(r) for r in conn.execute("SELECT name, run_id FROM app_locks")]
        finally:
            conn.close()
        return self.model.embed(texts, kind=kind)

    def close(self) -> None:
        return None


@pytest.fixture
async def local_engine(tmp_path: Path, sim: SimServer, local_model: LocalProvider) -> AsyncIterator[Engine]:
    engine = build_engine(tmp_path, sim, embedding=LOCAL, provider=local_model)
    try:
        yield engine
    finally:
        await engine.aclose()


async def test_embed_phase_embeds_exactly_the_given_documents_under_the_embed_lock(
    tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    watcher = LockWatchingModel(local_model, tmp_path / "lore.db")
    engine = build_engine(tmp_path, sim, embedding=LOCAL, provider=watcher)
    try:
        synced = await run_surgical_sync(engine, surgical(issues=[1, 2], no_embed=True))
        all_docs = [r[0] for r in rows(engine.db.path, "documents")]
        chosen = synced.entities[1].document_ids
        assert chosen and set(chosen) < set(all_docs)
        ctx = RunContext(engine, mode="surgical", progress=Progress())
        ctx.run_id = "embed-test-run"
        with lock_held_by_another_process(engine.db.path):  # a sync in progress elsewhere does not block it
            outcome = await run_embed_phase(
                ctx, [*chosen, chosen[0]], service=engine.embeddings, no_embed=False
            )
        assert outcome.status == "embedded" and outcome.embedded == len(chosen) == outcome.total
        assert outcome.document_ids == chosen
        stored = rows(engine.db.path, "embeddings")
        assert sorted({r[1] for r in stored}) == sorted(chosen), "vectors for exactly those documents"
        assert {(r[3], r[4]) for r in stored} == {(local_model.model_key, 384)}
        assert all(len(r[8]) == 384 * 4 for r in stored), "float32 BLOBs"
        assert set(watcher.locks_seen) == {("embed", "embed-test-run"), ("sync", "other-daemon-run")}
        assert ctx.counters.embedded == len(chosen) and ctx.counters.embed_total == len(chosen)
        assert "embedLockWait" in ctx.stage_timings_ms
        assert rows(engine.db.path, "app_locks") == [], "the embed lock is released afterwards"
    finally:
        await engine.aclose()


async def test_surgical_run_embeds_what_it_regenerated_and_vectors_match_the_model(
    local_engine: Engine, local_model: LocalProvider
) -> None:
    result = await run_surgical_sync(local_engine, surgical(issues=[3], mrs=[2]))
    assert result.status == "succeeded", result.warnings
    regenerated = [d for e in result.entities for d in e.document_ids]
    stored = rows(local_engine.db.path, "embeddings")
    assert sorted({r[1] for r in stored}) == sorted(regenerated)
    assert result.counters.embedded == len(regenerated) == result.counters.embed_total
    doc_id, title, content = next(
        (r[0], r[4], r[5]) for r in rows(local_engine.db.path, "documents") if r[1] == "issue"
    )
    first = next(r for r in stored if r[1] == doc_id and r[2] == 0)
    stored_vector = np.frombuffer(first[8], dtype="<f4")
    chunk = chunk_document(title, content, "group/project", local_engine.embeddings.plan)[0]
    assert chunk.text.startswith(f"group/project{title}\n") and first[5] == chunk.hash
    fresh = local_model.embed([chunk.text], kind="document")[0]
    assert np.allclose(stored_vector, fresh, atol=1e-4), "the stored vector is the model's for chunk 0"
    again = await run_surgical_sync(local_engine, surgical(issues=[3], mrs=[2]))
    assert again.counters.embedded == 0, "nothing regenerated, nothing embedded"
    assert rows(local_engine.db.path, "embeddings") == stored


async def test_embed_phase_is_skipped_without_provider_or_when_asked(engine: Engine) -> None:
    ctx = RunContext(engine, mode="surgical", progress=Progress())
    asked = await run_embed_phase(ctx, [1, 2], service=engine.embeddings, no_embed=True)
    assert asked.status == "skipped" and asked.warning is not None and "noEmbed" in asked.warning
    none = await run_embed_phase(ctx, [1, 2], service=engine.embeddings, no_embed=False)
    assert none.status == "skipped" and none.document_ids == [1, 2]
    assert none.warning is not None and '"none"' in none.warning
    assert rows(engine.db.path, "embeddings") == [] and rows(engine.db.path, "app_locks") == []
