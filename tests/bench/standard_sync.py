"""Benchmark: a full standard sync against the simulator, at growing sizes. Prints figures only.

For each size (issues; MRs = ``--mr-ratio`` x issues; ``--notes`` notes per entity on average):

* the simulator runs in its own process (``python -m lore_daemon.sim``, zero injected latency),
  so it does not share the daemon's GIL;
* the sync runs in a fresh child process (fresh DB file), so its peak RSS is its own;
* reported: wall time and entities/s end to end, time per phase, the writer thread's CPU time
  per phase (local processing without network waits) and the local rate in issues/s, peak RSS;
* then the raw apsw ceiling for the same rows: every content row of the synced database copied
  into a fresh database with plain ``executemany`` in one transaction (the FTS5 rows included, by
  their own ``executemany``);
* then (``--replay``, on by default) the quiet replay of ``_replay.py``: every payload fetched
  first, then the real ingest / dependents / docs writes timed on one thread of a fresh database,
  with no network and no event loop in the way — the stable "local processing" figure. Its row
  counts are checked against the live-synced database (same work, table by table).

    .venv/bin/python tests/bench/standard_sync.py [--sizes 1000,10000,50000] [--mr-ratio 0.1]
        [--notes 8] [--concurrency 8] [--no-replay]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TOKEN_ENV = "LORE_BENCH_TOKEN"
# Mirror tables in dependency order (parents first), then the documents (FTS5 kept by triggers).
MIRROR_TABLES = (
    "projects", "users", "milestones", "raw_payloads", "issues", "issue_labels", "issue_assignees",
    "merge_requests", "mr_labels", "mr_assignees", "mr_reviewers", "discussions", "notes",
    "resource_state_events", "resource_label_events", "resource_milestone_events",
    "entity_references", "mr_file_changes",
)
DOCUMENT_TABLES = ("documents",)
# What the replay must reproduce exactly (plus empty queues once both runs finished).
CHECKED_TABLES = (*MIRROR_TABLES, *DOCUMENT_TABLES, "dirty_sources", "pending_dependent_fetches")


def _config(folder: Path, base_url: str, concurrency: int) -> Path:
    path = folder / "config.toml"
    path.write_text(
        "\n".join([
            "[gitlab]", f'base_url = "{base_url}"', f'token_env = "{TOKEN_ENV}"',
            "[[projects]]", 'path = "group/project"',
            "[storage]", f'db_path = "{folder / "lore.db"}"',
            "[sync]", f"primary_concurrency = {concurrency}",
            "[embedding]", 'provider = "none"',  # embedding is measured by embed_throughput.py
        ]) + "\n"
    )
    return path


async def _sync(config_path: Path, token: str) -> tuple[Any, float]:
    from lore_daemon import protocol
    from lore_daemon.config import load_config, read_token
    from lore_daemon.engine import Engine
    from lore_daemon.store.connection import Database
    from lore_daemon.sync.locking import make_owner
    from lore_daemon.sync.standard import run_standard_sync

    env = {TOKEN_ENV: token}
    config = load_config(config_path, env=env)
    db = Database(config.db_path)
    db.open()
    engine = Engine.create(config, db, read_token(config, env).reveal(), owner=make_owner())
    started = time.monotonic()
    try:
        result = await run_standard_sync(engine, protocol.SyncParams(), lambda note: None)
    finally:
        await engine.aclose()
    return result, time.monotonic() - started


def _start_sim(issues: int, mrs: int, notes: int) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """The seeded simulator in its own process (same arguments, same data); its address and token."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon.sim", "--port", "0", "--issues", str(issues), "--mrs", str(mrs),
         "--notes-per-entity", str(notes)],
        stdout=subprocess.PIPE, cwd=REPO,
    )
    assert sim.stdout is not None
    return sim, dict(json.loads(sim.stdout.readline()))


def run_one(folder: Path, issues: int, mrs: int, notes: int, concurrency: int) -> dict[str, Any]:
    """Child process: start the simulator, sync once, report."""
    import msgspec

    sim, info = _start_sim(issues, mrs, notes)
    try:
        result, wall = asyncio.run(_sync(_config(folder, info["base_url"], concurrency), info["token"]))
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    return {
        "wall_s": wall,
        "status": result.status,
        "counters": msgspec.to_builtins(result.counters),
        "timings": dict(result.stage_timings_ms),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_replay(folder: Path, issues: int, mrs: int, notes: int, concurrency: int) -> dict[str, Any]:
    """Child process: fetch everything, stop the simulator, then time the writes alone."""
    import _replay

    sim, info = _start_sim(issues, mrs, notes)
    try:
        captured = asyncio.run(_replay.capture(
            info["base_url"], info["token"], "group/project", concurrency, folder / "replay-dependents.pickle"
        ))
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    phases = _replay.replay(folder / "replay.db", captured)
    return {
        "fetch_s": captured.requests_s,
        "phases": phases,
        "live_counts": _replay.table_counts(folder / "lore.db", CHECKED_TABLES),
        "replay_counts": _replay.table_counts(folder / "replay.db", CHECKED_TABLES),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_ceiling(folder: Path) -> dict[str, Any]:
    """Child process: copy every content row into a fresh database with bare executemany, one
    transaction per group (mirror tables, then documents and their FTS5 rows).

    The FTS5 rows go in by their own ``executemany``, not through the insert trigger: a trigger
    makes every row's statement open a savepoint, and FTS5 flushes its pending index to a new
    segment at each one, so the trigger path costs ~2x the bare inserts it is meant to bound."""
    from lore_daemon.store import migrate, open_connection

    source = open_connection(folder / "lore.db")
    target = open_connection(folder / "ceiling.db")
    migrate(target)
    target.execute("DROP TRIGGER documents_fts_insert")  # a scratch copy; see the docstring
    out: dict[str, Any] = {}
    for label, tables in (("mirror", MIRROR_TABLES), ("documents", DOCUMENT_TABLES)):
        rows = 0
        started = time.monotonic()
        with target:
            for table in tables:  # table and column names come from the schema, never input
                columns = [c[1] for c in source.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                marks = ", ".join("?" for _ in columns)
                rows += int(source.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                target.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({marks})",
                    source.execute(f"SELECT {names} FROM {table}"),
                )
            if label == "documents":
                target.executemany(
                    "INSERT INTO documents_fts (rowid, title, content) VALUES (?, ?, ?)",
                    source.execute("SELECT id, title, content FROM documents"),
                )
        out[label] = {"rows": rows, "seconds": time.monotonic() - started}
    source.close()
    target.close()
    return out


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, cwd=REPO, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _report_replay(issues: int, entities: int, replay: dict[str, Any]) -> None:
    phases = replay["phases"]
    wall = sum(p["wall_s"] for p in phases.values())
    cpu = sum(p["cpu_s"] for p in phases.values())
    print(f"   quiet replay (payloads fetched first in {replay['fetch_s']:.1f} s, then writes alone; "
          f"peak RSS {replay['peak_rss_mb']:.0f} MB): " + ", ".join(
              f"{k} {p['wall_s'] * 1000:.0f} ms wall / {p['cpu_s'] * 1000:.0f} ms CPU"
              for k, p in phases.items()
          ))
    print(f"   local processing, quiet replay: {issues / wall:.0f} issues/s wall, {issues / cpu:.0f} CPU "
          f"({entities / wall:.0f} entities/s wall incl. notes, events, docs)")
    mirror = phases["ingest"]["wall_s"] + phases["dependents"]["wall_s"]
    print(f"     of which the mirror (ingest + dependents: issues, MRs, discussions, notes, events): "
          f"{issues / mirror:.0f} issues/s wall; documents (render, hash, FTS5): "
          f"{replay['replay_counts']['documents'] / phases['docs']['wall_s']:.0f} documents/s wall")
    live, again = replay["live_counts"], replay["replay_counts"]
    differ = [f"{t} {live[t]} vs {again[t]}" for t in live if live[t] != again[t]]
    shown = ", ".join(f"{t} {live[t]}" for t in ("issues", "merge_requests", "discussions", "notes",
                                                    "resource_state_events", "documents"))
    print(f"   replay vs live rows: {'IDENTICAL' if not differ else 'DIFFER: ' + '; '.join(differ)} "
          f"across {len(live)} tables ({shown})")


def _report(issues: int, mrs: int, one: dict[str, Any], ceiling: dict[str, Any]) -> None:
    c, t = one["counters"], one["timings"]
    entities = c["issuesIngested"] + c["mrsIngested"]
    cpu_ms = t.get("ingestWriteCpu", 0) + t.get("dependentsWriteCpu", 0) + t.get("docsWriteCpu", 0)
    write_ms = t.get("ingestWrite", 0) + t.get("dependentsWrite", 0) + t.get("docsWrite", 0)
    print(f"\n== {issues} issues, {mrs} MRs: {one['status']} in {one['wall_s']:.1f} s "
          f"({entities / one['wall_s']:.0f} entities/s end to end), peak RSS {one['peak_rss_mb']:.0f} MB")
    print(f"   rows: {c['discussions']} discussions, {c['notes']} notes, {c['events']} events, "
          f"{c['closesLinks']} closes links, {c['fileChanges']} file changes, "
          f"{c['documentsRegenerated']} documents; {c['requests']} GitLab requests")
    phases = ("ingest", "dependents", "docs", "embed")
    print("   phases (ms): " + ", ".join(f"{k} {t[k]}" for k in phases if k in t))
    print("   writer CPU (ms): " + ", ".join(
        f"{k} {t.get(k + 'WriteCpu', 0)}" for k in ("ingest", "dependents", "docs")
    ) + f"; awaited writes (wall) {write_ms} ms")
    if cpu_ms:
        print(f"   local processing: {issues / (cpu_ms / 1000):.0f} issues/s "
              f"({entities / (cpu_ms / 1000):.0f} entities/s incl. notes, events, docs)")
        mirror_ms = t.get("ingestWriteCpu", 0) + t.get("dependentsWriteCpu", 0)
        if mirror_ms:
            rate = issues / (mirror_ms / 1000)
            print(f"     of which the mirror (ingest + dependents): {rate:.0f} issues/s")
    total = sum(part["seconds"] for part in ceiling.values())
    parts = "; ".join(
        f"{label} {part['rows']} rows in {part['seconds']:.2f} s "
        f"({part['rows'] / part['seconds']:.0f} rows/s)"
        for label, part in ceiling.items() if part["seconds"]
    )
    print(f"   raw apsw ceiling, same rows: {parts}; together {issues / total:.0f} issues/s")
    if "replay" in one:
        _report_replay(issues, entities, one["replay"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,50000", help="comma-separated issue counts")
    parser.add_argument("--mr-ratio", type=float, default=0.1)
    parser.add_argument("--notes", type=int, default=8, help="average notes per entity")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--one", nargs=5, metavar=("DIR", "ISSUES", "MRS", "NOTES", "CONC"), help=argparse.SUPPRESS
    )
    parser.add_argument("--ceiling", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument(
        "--replay-run", nargs=5, metavar=("DIR", "ISSUES", "MRS", "NOTES", "CONC"), help=argparse.SUPPRESS
    )
    parser.add_argument("--replay", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the quiet replay of the writes (default: on)")
    args = parser.parse_args()
    if args.one:
        folder, issues, mrs, notes, conc = args.one
        print(json.dumps(run_one(Path(folder), int(issues), int(mrs), int(notes), int(conc))))
        return
    if args.replay_run:
        folder, issues, mrs, notes, conc = args.replay_run
        print(json.dumps(run_replay(Path(folder), int(issues), int(mrs), int(notes), int(conc))))
        return
    if args.ceiling:
        print(json.dumps(run_ceiling(Path(args.ceiling))))
        return
    print(f"standard sync benchmark: notes/entity {args.notes}, MR ratio {args.mr_ratio}, "
          f"concurrency {args.concurrency}, simulator in a separate process, zero latency")
    for size in (int(s) for s in args.sizes.split(",")):
        mrs = int(size * args.mr_ratio)
        folder = Path(tempfile.mkdtemp(prefix=f"lore-bench-{size}-"))
        try:
            one = _child(["--one", str(folder), str(size), str(mrs), str(args.notes), str(args.concurrency)])
            ceiling = _child(["--ceiling", str(folder)])
            if args.replay:
                one["replay"] = _child(
                    ["--replay-run", str(folder), str(size), str(mrs), str(args.notes), str(args.concurrency)]
                )
            _report(size, mrs, one, ceiling)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
