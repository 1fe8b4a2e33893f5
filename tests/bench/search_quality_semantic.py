"""Semantic-only search quality on the curated project: recall@5 and MRR per query type.

Mirrors ``acme/brightday`` (simulator with ``corpus=True``) with the real local model, then ranks
every query of ``data/search_queries.json`` with the semantic core (``embedding.semantic``): the
documents' order, collapsed to their entities (a discussion counts for its issue or MR). A query
scores at the rank of its first expected entity. The lexical and hybrid columns come with
``lore/search`` (tests/bench/search_quality.py).

    .venv/bin/python tests/bench/search_quality_semantic.py [--smoke]

``--smoke`` mirrors only the entities two queries of each type expect (a surgical run) and ranks
those queries (tests/test_bench_smoke.py: the figures are then meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lore_daemon import protocol
from lore_daemon.embedding.semantic import semantic_search
from lore_daemon.engine import Engine
from lore_daemon.sim import SimServer
from lore_daemon.sim.corpus import CORPUS_PROJECT_PATH
from lore_daemon.store import vectors
from lore_daemon.sync.surgical import run_surgical_sync
from tests.bench._corpus import CORPUS_ONLY, Query, build_corpus_engine, load_queries, mirror_corpus

TOP = 5


async def entity_ranking(engine: Engine, query: str, refs: dict[int, str]) -> list[str]:
    assert engine.embeddings is not None
    hits = await semantic_search(engine.db, engine.embeddings, query, limit=50)
    ranking: list[str] = []
    for hit in hits:
        ref = refs.get(hit.document_id)
        if ref is not None and ref not in ranking:
            ranking.append(ref)
    return ranking


def rank_of(ranking: list[str], query: Query) -> int | None:
    found = [ranking.index(ref) + 1 for ref in query.expected if ref in ranking]
    return min(found) if found else None


def smoke_queries(queries: list[Query], per_type: int = 2) -> list[Query]:
    return [q for kind in ("paraphrase", "keyword", "reference")
            for q in [q for q in queries if q.type == kind][:per_type]]


async def mirror_expected(engine: Engine, queries: list[Query]) -> protocol.SyncResult:
    """Only the entities ``queries`` expect, by one surgical run (with embedding)."""
    refs = {ref for q in queries for ref in q.expected}
    params = protocol.SyncSurgicalParams(
        project=CORPUS_PROJECT_PATH, issues=sorted(int(r[1:]) for r in refs if r.startswith("#")),
        mrs=sorted(int(r[1:]) for r in refs if r.startswith("!")),
    )
    result = await run_surgical_sync(engine, params)
    assert result.status == "succeeded", result
    return result


async def measure(folder: Path, sim: SimServer, smoke: bool) -> dict[str, list[int | None]]:
    engine = build_corpus_engine(folder, sim, embedding='provider = "local"')
    queries = load_queries(sim.base_url)
    try:
        started = time.perf_counter()
        if smoke:
            queries = smoke_queries(queries)
            result = await mirror_expected(engine, queries)
        else:
            result = await mirror_corpus(engine)
        print(f"mirrored and embedded {result.counters.embedded} documents in "
              f"{time.perf_counter() - started:.1f} s")
        docs = engine.db.read_sync(lambda c: [r[0] for r in c.execute("SELECT id FROM documents")])
        entities = engine.db.read_sync(lambda c: vectors.document_entities(c, docs))
        refs = {doc: ("#" if kind == "issue" else "!") + str(iid) for doc, (kind, iid) in entities.items()}
        ranks: dict[str, list[int | None]] = defaultdict(list)
        for query in queries:
            rank = rank_of(await entity_ranking(engine, query.text, refs), query)
            ranks[query.type].append(rank)
            ranks["all"].append(rank)
            if query.type == "paraphrase" and (rank is None or rank > TOP):
                print(f"  miss: {query.text!r} -> expected {', '.join(query.expected)} (rank {rank})")
        return ranks
    finally:
        await engine.aclose()


def report(ranks: dict[str, list[int | None]]) -> None:
    print(f"\n| queries | n | recall@{TOP} | MRR |\n|---|---|---|---|")
    for kind in ("paraphrase", "keyword", "reference", "all"):
        found = ranks.get(kind, [])
        if not found:
            continue
        recall = sum(1 for r in found if r is not None and r <= TOP) / len(found)
        mrr = sum(1 / r for r in found if r is not None) / len(found)
        print(f"| {kind} | {len(found)} | {recall:.2f} | {mrr:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs, not the figures")
    smoke = parser.parse_args().smoke
    with SimServer(CORPUS_ONLY) as sim, tempfile.TemporaryDirectory() as tmp:
        report(asyncio.run(measure(Path(tmp), sim, smoke)))


if __name__ == "__main__":
    main()
