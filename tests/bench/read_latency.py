"""Read latency on a big mirror, through the protocol (prints figures; asserts nothing).

A mirror of 50,000 issues and 5,000 MRs with their notes (~420k notes, ~310k documents) is built
once by a real standard sync from the simulator and cached (``--cache-dir``); each run copies it.
The daemon runs as a subprocess over stdio; the simulator in its own process. Measured:

* warm ``lore/get`` of random issues with discussions and links (the default include): p50/p99;
* ``lore/list``: the default page, and pages under common filters: p50;
* lexical ``lore/search`` over a mix of queries (common title words, phrases, people, paths,
  references): p50/p99, and p50 per kind of query;
* the same while a standard sync writes (the simulator bumps 2,000 issues, one sync re-ingests
  them with their notes and documents, again until enough samples): p50/p99;
* where a search's time goes: the in-process cost of its FTS5 bm25 query, by match count.

Targets (from the issue): get p50 <= 3 ms, search p50 <= 15 ms, p99 during a sync <= 50 ms.

    .venv/bin/python tests/bench/read_latency.py [--issues 50000] [--samples 400]
        [--cache-dir ~/.cache/lore-bench]

``--smoke`` runs every step on a 60-issue mirror in a temporary cache (tests/test_bench_smoke.py:
the figures are then meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from protocol_latency import Daemon, percentile

REPO = Path(__file__).resolve().parents[2]
SEED = 3
NOTES = 8
MR_RATIO = 10
BUMPS_PER_SYNC = 2000
TARGETS = {"get_p50_ms": 3.0, "search_p50_ms": 15.0, "busy_p99_ms": 50.0}
# What people type: common title words and phrases (the simulator's titles come from a small
# vocabulary, so these match tens of thousands of documents), people, paths, references.
QUERIES: dict[str, list[str]] = {
    "common word": ["cache", "crash", "pagination", "webhook", "export", "timeout", "migration"],
    "two or three words": ["memory leak", "retry logic", "settings page", "login flow token expires",
                           "flaky test in the CLI", "search index startup", "race sync worker"],
    "phrase / prefix / exclusion": ['"memory leak"', "migrat*", "cache -timeout", '"slow networks"'],
    "person / path / branch": ["ivan.lovelace14", "@dana.sato21", "scripts/utils1.md", "stable-1.x"],
    "reference": ["#4711", "!321 crash", "group/project#12000", "why does #30001 time out"],
}


def _sim(issues: int) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    sim = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon.sim", "--port", "0", "--seed", str(SEED), "--issues", str(issues),
         "--mrs", str(issues // MR_RATIO), "--notes-per-entity", str(NOTES)],
        stdout=subprocess.PIPE, cwd=REPO,
    )
    assert sim.stdout is not None
    return sim, dict(json.loads(sim.stdout.readline()))


def _config(folder: Path, base_url: str, db: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[gitlab]\nbase_url = "{base_url}"\ntoken_env = "GITLAB_TOKEN"\n'
        f'[[projects]]\npath = "group/project"\n[storage]\ndb_path = "{db}"\n'
        '[embedding]\nprovider = "none"\n'  # reads are measured, not the embedding model
    )
    return path


def build_mirror(target: Path, issues: int) -> None:
    """A standard sync of the whole simulated project into ``target`` (child process)."""
    import asyncio

    from lore_daemon import protocol
    from lore_daemon.config import load_config, read_token
    from lore_daemon.engine import Engine
    from lore_daemon.store.connection import Database
    from lore_daemon.sync.locking import make_owner
    from lore_daemon.sync.standard import run_standard_sync

    sim, info = _sim(issues)
    try:
        env = {"GITLAB_TOKEN": info["token"]}
        config = load_config(_config(target.parent, info["base_url"], target), env=env)

        async def sync() -> str:
            db = Database(config.db_path)
            db.open()
            engine = Engine.create(config, db, read_token(config, env).reveal(), owner=make_owner())
            try:
                return (await run_standard_sync(engine, protocol.SyncParams())).status
            finally:
                await engine.aclose()

        started = time.monotonic()
        status = asyncio.run(sync())
        print(f"built the mirror in {time.monotonic() - started:.0f} s: {status}", file=sys.stderr)
    finally:
        sim.terminate()
        sim.wait(30)


def cached_mirror(cache_dir: Path, issues: int) -> Path:
    path = cache_dir / f"read-latency-{issues}-seed{SEED}-notes{NOTES}.db"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".building.db")
        for stale in cache_dir.glob(partial.name + "*"):
            stale.unlink()
        print(f"building the {issues}-issue mirror (cached as {path}; takes minutes)...", file=sys.stderr)
        subprocess.run([sys.executable, __file__, "--build", str(partial), str(issues)], check=True, cwd=REPO)
        partial.rename(path)
    return path


def timed(daemon: Daemon, method: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    reply = daemon.call(method, params)
    elapsed = (time.perf_counter() - started) * 1000
    assert "result" in reply, reply
    return elapsed


def _pcts(samples: list[float]) -> str:
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    return f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  (n={len(samples)})"


def _get_params(rng: random.Random, issues: int) -> dict[str, Any]:
    return {"kind": "issue", "iid": rng.randint(1, issues), "project": "group/project"}


LIST_PARAMS: list[dict[str, Any]] = [
    {}, {"state": "opened"}, {"labels": ["bug"]}, {"kind": "mr", "state": "merged"},
    {"author": "ivan.lovelace14"}, {"sort": "created", "order": "asc", "limit": 200},
]


def measure_quiet(daemon: Daemon, issues: int, samples: int, rng: random.Random) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"get": [], "list": [], "search": []}
    for _ in range(samples):
        out["get"].append(timed(daemon, "lore/get", _get_params(rng, issues)))
    for params in LIST_PARAMS:
        rounds = max(20, samples // 20)
        out[f"list {json.dumps(params)}"] = [timed(daemon, "lore/list", params) for _ in range(rounds)]
    out["list"] = [timed(daemon, "lore/list", {}) for _ in range(samples // 2)]
    rounds = max(3, samples // sum(len(q) for q in QUERIES.values()))
    for kind, queries in QUERIES.items():
        key = f"search: {kind}"
        out[key] = [timed(daemon, "lore/search", {"query": q}) for _ in range(rounds) for q in queries]
        out["search"] += out[key]
    return out


def measure_busy(
    daemon: Daemon, control: Any, issues: int, samples: int, rng: random.Random
) -> dict[str, Any]:
    """Reads interleaved with standard syncs that write (2,000 bumped issues each)."""
    out: dict[str, Any] = {"get": [], "list": [], "search": [], "syncs": []}
    queries = [q for qs in QUERIES.values() for q in qs]
    bumps = min(BUMPS_PER_SYNC, issues // 2)
    bumped = 0
    while len(out["get"]) < samples:
        for iid in rng.sample(range(1, issues + 1), bumps):
            control.mutate("bump_issue", project="group/project", iid=iid)
        bumped += bumps
        sync_id = daemon.send("lore/sync", {"noEmbed": True})
        started = time.monotonic()
        while sync_id not in daemon.responses and len(out["get"]) < samples:
            out["get"].append(timed(daemon, "lore/get", _get_params(rng, issues)))
            out["list"].append(timed(daemon, "lore/list", rng.choice(LIST_PARAMS)))
            out["search"].append(timed(daemon, "lore/search", {"query": rng.choice(queries)}))
        reply = daemon.wait_for(sync_id)
        result = reply.get("result", {})
        out["syncs"].append((time.monotonic() - started, result.get("status"),
                             result.get("counters", {}).get("issuesIngested")))
    out["bumped"] = bumped
    return out


def attribution(db: Path) -> list[tuple[str, int, float]]:
    """In-process CPU ms of the bm25 candidate query (limit 101) per query, with its match count."""
    from lore_daemon.store import open_connection
    from lore_daemon.store.fts_query import fts_query
    from lore_daemon.store.read_filters import EntityFilter
    from lore_daemon.store.read_search import lexical_candidates, tokenizers

    conn = open_connection(db, readonly=True)
    tokenize, _ = tokenizers(conn)
    rows = []
    for queries in QUERIES.values():
        for text in queries:
            expression = fts_query(text, tokenize).expression
            if expression is None:
                continue
            (matches,) = conn.execute(
                "SELECT count(*) FROM documents_fts WHERE documents_fts MATCH ?", (expression,)
            ).fetchone()
            lexical_candidates(conn, expression, EntityFilter(), (), 101)
            started = time.process_time()
            for _ in range(5):
                lexical_candidates(conn, expression, EntityFilter(), (), 101)
            rows.append((text, int(matches), (time.process_time() - started) / 5 * 1000))
    conn.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--issues", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "lore-bench")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs, not the figures")
    parser.add_argument("--build", nargs=2, metavar=("PATH", "ISSUES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_mirror(Path(args.build[0]), int(args.build[1]))
        return 0
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="lore-read-smoke-") as cache:
            args.issues, args.samples, args.cache_dir = 60, 20, Path(cache)
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    mirror = cached_mirror(args.cache_dir, args.issues)
    from lore_daemon.sim import SimControl

    with tempfile.TemporaryDirectory(prefix="lore-read-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        db = tmp / "lore.db"
        shutil.copyfile(mirror, db)
        sim, info = _sim(args.issues)
        control = SimControl(info["base_url"])
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "LORE_"))}
            env.update(LORE_CONFIG_PATH=str(_config(tmp, info["base_url"], db)), GITLAB_TOKEN=info["token"],
                       HOME=str(tmp))
            daemon = Daemon(env)
            daemon.call("initialize", {"processId": os.getpid(), "capabilities": {}})
            rng = random.Random(7)
            for _ in range(50):  # warm-up: database open (migrations), reader threads, page cache
                timed(daemon, "lore/get", _get_params(rng, args.issues))
                timed(daemon, "lore/search", {"query": rng.choice(QUERIES["common word"])})
            floor = [timed(daemon, "lore/syncRuns", {"runId": "none"}) for _ in range(200)]
            quiet = measure_quiet(daemon, args.issues, args.samples, rng)
            busy = measure_busy(daemon, control, args.issues, args.samples // 2, rng)
            daemon.close()
            where = attribution(db)
        finally:
            control.close()
            sim.terminate()
            sim.wait(30)
    report(args.issues, quiet, busy, where, floor)
    return 0


def report(issues: int, quiet: dict[str, list[float]], busy: dict[str, Any],
           where: list[tuple[str, int, float]], floor: list[float]) -> None:
    print(f"read latency on a mirror of {issues} issues, {issues // MR_RATIO} MRs, ~{NOTES} notes each "
          f"(protocol floor, lore/syncRuns of no run: p50 {statistics.median(floor):.2f} ms)")
    print(f"  warm lore/get (discussions, links)   {_pcts(quiet['get'])}")
    print(f"  lore/list default page               {_pcts(quiet['list'])}")
    for key, samples in quiet.items():
        if key.startswith("list {"):
            print(f"    {key[5:]:<36} p50 {statistics.median(samples):7.2f} ms")
    print(f"  lore/search, all queries             {_pcts(quiet['search'])}")
    for key, samples in quiet.items():
        if key.startswith("search: "):
            print(f"    {key[8:]:<36} {_pcts(samples)}")
    syncs = busy["syncs"]
    print(f"  during standard syncs ({len(syncs)} syncs of {busy['bumped'] // len(syncs)} bumped issues: "
          + ", ".join(f"{s[0]:.0f} s {s[1]} ({s[2]} ingested)" for s in syncs) + ")")
    for key in ("get", "list", "search"):
        print(f"    lore/{key:<32} {_pcts(busy[key])}")
    every = busy["get"] + busy["list"] + busy["search"]
    print(f"    every read during syncs              {_pcts(every)}")
    print("  where a search's time goes: the bm25 candidate query alone, in process (CPU ms, limit 101):")
    for text, matches, ms in sorted(where, key=lambda row: row[1]):
        print(f"    {text!r:<32} {matches:>7} matching documents  {ms:7.2f} ms")
    verdicts = {
        "get p50": statistics.median(quiet["get"]) <= TARGETS["get_p50_ms"],
        "search p50": statistics.median(quiet["search"]) <= TARGETS["search_p50_ms"],
        "p99 during sync": percentile(every, 0.99) <= TARGETS["busy_p99_ms"],
    }
    print("targets: get p50 <= {get_p50_ms} ms, search p50 <= {search_p50_ms} ms, p99 during a sync <= "
          "{busy_p99_ms} ms".format(**TARGETS))
    print("  " + ", ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in verdicts.items()))


if __name__ == "__main__":
    sys.exit(main())
