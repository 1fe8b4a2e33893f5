"""Embedding throughput and cost (prints figures; asserts nothing).

1. Backfill rate: the embed phase of a standard sync (``reembed``: every document) against the bare
   model on the same chunk texts, in the same batches, in the same run, alternated twice. Target:
   the phase keeps >= 0.8 of the bare model's documents/s.
2. A 1-issue surgical run with and without embedding (simulator in its own process, L ms per API
   request; alternated, each run on an issue never seen before).
3. Semantic search p50/p99 over 50,000 documents and the memory of a process holding the model and
   the vectors: ``_search_scale.py`` in a child process (its RSS is its own).

Run: ``.venv/bin/python tests/bench/embed_throughput.py [--docs 50000] [--latency-ms 50]``;
``--smoke`` runs each part once at a tiny size (tests/test_bench_smoke.py: the figures are then
meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lore_daemon import protocol
from lore_daemon.embedding.chunking import chunk_document
from lore_daemon.embedding.local import LocalProvider
from lore_daemon.embedding_catalog import LOCAL_MODELS
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sim.corpus import count
from lore_daemon.store import vectors
from lore_daemon.sync.standard import run_standard_sync
from lore_daemon.sync.surgical import run_surgical_sync
from lore_daemon.tuning import DEFAULT_TUNING
from tests.bench._corpus import CORPUS_ONLY, build_corpus_engine, mirror_corpus

HERE = Path(__file__).resolve().parent
CORPUS = "acme/brightday"


def bare_rate(engine: Engine, model: LocalProvider) -> tuple[float, int, int]:
    """Documents/s of the model alone over the documents' chunk texts, batch by batch."""
    assert engine.embeddings is not None
    plan, size = engine.embeddings.plan, engine.embeddings.embedding.batch_size or 8
    step = size * DEFAULT_TUNING.embed_step_batches
    ids = engine.db.read_sync(lambda c: [r[0] for r in c.execute("SELECT id FROM documents ORDER BY id")])
    texts = engine.db.read_sync(lambda c: vectors.load_texts(c, ids))
    started = time.perf_counter()
    chunks = 0
    for start in range(0, len(texts), step):  # the phase's steps and batches, without the store
        chunk_texts = [c.text for t in texts[start : start + step]
                       for c in chunk_document(t.title, t.content, t.project_path, plan)]
        for k in range(0, len(chunk_texts), size):
            model.embed(chunk_texts[k : k + size], kind="document")
        chunks += len(chunk_texts)
    return len(texts) / (time.perf_counter() - started), len(texts), chunks


async def phase_rate(engine: Engine) -> tuple[float, int]:
    result = await run_standard_sync(engine, protocol.SyncParams(reembed=True))
    embedded, ms = result.counters.embedded, result.stage_timings_ms["embed"]
    return embedded / (ms / 1000), embedded


def keep_only(sim: SimServer, issues: int, mrs: int) -> None:
    """Hide every corpus entity past the first ``issues`` / ``mrs`` (a smoke run's smaller mirror)."""
    for kind, keep, total in (("issue", issues, count("issue")), ("mr", mrs, count("mr"))):
        for iid in range(keep + 1, total + 1):
            sim.control.mutate(f"hide_{kind}", project=CORPUS, iid=iid)


async def backfill(folder: Path, model: LocalProvider, rounds: int, smoke: bool) -> None:
    print("== 1. backfill: embed phase vs the bare model (same texts, same batches, same run)")
    with SimServer(CORPUS_ONLY) as sim:
        if smoke:
            keep_only(sim, issues=6, mrs=2)
        engine = build_corpus_engine(folder, sim, embedding='provider = "local"', provider=model)
        try:
            await mirror_corpus(engine, no_embed=True)  # each round's phase embeds every document
            rows = []
            for _ in range(rounds):
                bare, docs, chunks = bare_rate(engine, model)
                phase, embedded = await phase_rate(engine)
                rows.append((bare, phase))
                print(f"   bare {bare:6.2f} docs/s   phase {phase:6.2f} docs/s   ratio {phase / bare:.2f}"
                      f"   ({docs} documents, {chunks} chunks, {embedded} embedded)")
            best = max(p for _, p in rows) / max(b for b, _ in rows)
            print(f"   best-of ratio {best:.2f} (target >= 0.8)")
        finally:
            await engine.aclose()


async def surgical(folder: Path, model: LocalProvider, latency_ms: int, runs: int) -> None:
    print(f"\n== 2. one-issue surgical run, with and without embedding (L = {latency_ms} ms per request)")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon.sim", "--corpus", "--issues", "0", "--mrs", "0",
         "--latency-ms", str(latency_ms)], stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    try:
        sim = _RemoteSim(info["base_url"], info["token"])
        engine = build_corpus_engine(folder, sim, embedding='provider = "local"', provider=model)  # type: ignore[arg-type]
        try:
            warm_up = protocol.SyncSurgicalParams(project=CORPUS, issues=[60])
            await run_surgical_sync(engine, warm_up)
            timings: dict[bool, list[tuple[float, int, int]]] = {True: [], False: []}
            for iid in range(1, runs + 1):
                no_embed = iid % 2 == 1
                started = time.perf_counter()
                result = await run_surgical_sync(
                    engine, protocol.SyncSurgicalParams(project=CORPUS, issues=[iid], no_embed=no_embed)
                )
                wall = (time.perf_counter() - started) * 1000
                embed_ms = result.stage_timings_ms.get("embed", 0)
                timings[no_embed].append((wall, embed_ms, result.counters.embedded))
            for no_embed, label in ((True, "without embedding"), (False, "with embedding")):
                walls = [w for w, _, _ in timings[no_embed]]
                embeds = [e for _, e, _ in timings[no_embed]]
                docs = statistics.mean(d for _, _, d in timings[no_embed])
                print(f"   {label:18} wall median {statistics.median(walls):6.0f} ms  "
                      f"(embed phase median {statistics.median(embeds):4.0f} ms, {docs:.1f} documents)")
        finally:
            await engine.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _RemoteSim:
    """The two attributes build_corpus_engine reads from a SimServer."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token


def search_scale(folder: Path, docs: int) -> None:
    print(f"\n== 3. semantic search over {docs:,} documents, and memory (child process)")
    script = [sys.executable, str(HERE / "_search_scale.py"), str(folder), str(docs)]
    subprocess.run([*script, "build"], check=True)
    out = subprocess.run([*script, "measure"], capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"   {figures['vectors']:,} chunk vectors; index load {figures['load_index_ms']} ms, "
          f"model load {figures['load_model_ms']} ms")
    for name in ("search_ms", "rank_only_ms", "filtered_rank_ms"):
        print(f"   {name:17} p50 {figures[name]['p50']:6.1f}   p99 {figures[name]['p99']:6.1f}")
    for stage, mem in figures["memory_mb"].items():
        print(f"   RSS {stage:17} {mem['VmRSS']:5d} MB   (peak so far {mem['VmHWM']} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs, not the figures")
    args = parser.parse_args()
    rounds, runs, docs = (1, 2, min(args.docs, 200)) if args.smoke else (2, 20, args.docs)
    started = time.perf_counter()
    model = LocalProvider(LOCAL_MODELS["all-MiniLM-L6-v2"], batch_size=8)
    print(f"model loaded in {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("backfill", "surgical", "scale"):
            (root / name).mkdir()
        asyncio.run(backfill(root / "backfill", model, rounds, args.smoke))
        asyncio.run(surgical(root / "surgical", model, args.latency_ms, runs))
        search_scale(root / "scale", docs)


if __name__ == "__main__":
    main()
