"""The embed phase: exactly the given documents, under the ``embed`` lock, never the ``sync`` lock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import apsw

from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.embed import run_embed_phase
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support.engine import Progress

from .children import lock_held_by_another_process
from .conftest import rows, surgical


class HashEmbedder:
    """A deterministic test provider: a 32-byte "vector" derived from the document's content hash."""

    name = "test-sha256"

    def __init__(self) -> None:
        self.locks_during_embed: list[Any] = []

    def embed(
        self, conn: apsw.Connection, document_ids: Sequence[int], *, check_cancelled: Callable[[], None]
    ) -> int:
        self.locks_during_embed = [tuple(r) for r in conn.execute("SELECT name, run_id FROM app_locks")]
        for doc_id in document_ids:
            check_cancelled()
            (content_hash,) = conn.execute(
                "SELECT content_hash FROM documents WHERE id = ?", (doc_id,)
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO embeddings"
                " (document_id, model, content_hash, dims, vector, embedded_at) VALUES (?, ?, ?, 32, ?, 0)",
                (doc_id, self.name, content_hash, hashlib.sha256(str(content_hash).encode()).digest()),
            )
        return len(document_ids)


async def test_embed_phase_embeds_exactly_the_given_documents_under_the_embed_lock(
    engine: Engine, sim: SimServer
) -> None:
    synced = await run_surgical_sync(engine, surgical(issues=[1, 2]))
    all_docs = [r[0] for r in rows(engine.db.path, "documents")]
    chosen = synced.entities[1].document_ids
    assert chosen and set(chosen) < set(all_docs)
    ctx = RunContext(engine, mode="surgical", progress=Progress())
    ctx.run_id = "embed-test-run"
    embedder = HashEmbedder()
    with lock_held_by_another_process(engine.db.path):  # a sync in progress elsewhere does not block it
        outcome = await run_embed_phase(ctx, [*chosen, chosen[0]], embedder=embedder, no_embed=False)
    assert outcome.status == "embedded" and outcome.embedded == len(chosen)
    assert outcome.document_ids == chosen
    assert sorted(r[0] for r in rows(engine.db.path, "embeddings")) == sorted(chosen)
    assert sorted(embedder.locks_during_embed) == [("embed", "embed-test-run"), ("sync", "other-daemon-run")]
    assert ctx.counters.embedded == len(chosen) and "embedLockWait" in ctx.stage_timings_ms
    assert rows(engine.db.path, "app_locks") == [], "the embed lock is released afterwards"


async def test_embed_phase_is_skipped_without_provider_or_when_asked(engine: Engine) -> None:
    ctx = RunContext(engine, mode="surgical", progress=Progress())
    embedder = HashEmbedder()
    asked = await run_embed_phase(ctx, [1, 2], embedder=embedder, no_embed=True)
    assert asked.status == "skipped" and asked.warning is not None and "noEmbed" in asked.warning
    none = await run_embed_phase(ctx, [1, 2], embedder=None, no_embed=False)
    assert none.status == "skipped" and none.document_ids == [1, 2]
    assert none.warning is not None and '"none"' in none.warning
    assert embedder.locks_during_embed == [] and rows(engine.db.path, "embeddings") == []
