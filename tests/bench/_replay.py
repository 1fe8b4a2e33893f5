"""Quiet replay of a standard sync's local work, for ``standard_sync.py --replay``.

During a live sync the writer thread shares the GIL with the event loop parsing HTTP, so its CPU
time is inflated and noisy. Here every payload is fetched first (real ``GitLabClient``, simulator
in its own process, stopped before timing starts), then the REAL write path of the standard sync
runs on one thread of a fresh database with nothing else in the way, phase by phase:

* ingest — ``ingest_phase._write_page`` per listing page (a savepoint per item, shared commits);
* dependents — ``drain_phase._claim`` batches and ``drain_phase._write_results`` (groups of
  ``Tuning.jobs_per_transaction`` jobs, one transaction each), fed ``Tuning.hop_parents`` parents
  per hop, as the live pipeline tops its hops up to;
* docs — ``docs_phase._drain_batch`` until a batch processes nothing.

The work to fetch is found by ingesting the listing into a throwaway in-memory database and
claiming its jobs (untimed), so the replay fetches exactly what the live drain would. Dependent
payloads are fetched claim batch by claim batch and pickled to a spill file, then loaded back one
batch at a time outside the timed sections: peak RSS stays flat as the project grows (the replay
claims the same batches in the same order, since it replays the same listing).
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.gitlab.models import Fetched, Project
from lore_daemon.store import migrate, open_connection
from lore_daemon.store.cursors import Resource
from lore_daemon.sync import docs_phase, drain_phase, ingest_phase
from lore_daemon.sync.dependents import STAGE_FOR_JOB_TYPE, fetch_dependents
from lore_daemon.tuning import Tuning

OWNER = "bench-replay"
STALE_CLAIM_MS = 600_000
RESOURCES: tuple[Resource, ...] = ("issues", "merge_requests")
PHASES = ("ingest", "dependents", "docs")


class QuietRun:
    """Stands in for ``RunContext``: the write functions only look at the cancel flag."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.tuning = Tuning()  # the daemon's batch sizes

    def check_cancelled(self) -> None:
        """Never cancelled: the replay always runs to the end."""


@dataclass
class Captured:
    """Every payload a full standard sync of one project fetches, held in memory."""

    project: Project
    pages: dict[Resource, list[list[Fetched[Any]]]]
    spill: Path  # one pickled {(kind, iid): FetchedDependents} per claim batch, in claim order
    requests_s: float


def _ingest_all(conn: apsw.Connection, run: Any, captured_project: Project,
                pages: dict[Resource, list[list[Fetched[Any]]]]) -> None:
    """The ingest phase's writes, page by page, exactly as ``ingest_phase`` issues them."""
    ingest_phase._upsert_project(conn, captured_project)
    for resource in RESOURCES:
        walk = ingest_phase.CursorWalk(None)
        for page in pages[resource]:
            ingest_phase._write_page(conn, run, captured_project.id, resource, page, walk)
        final = walk.final()
        if final is not None:
            ingest_phase._finish_walk(conn, captured_project.id, resource, final)


def _claim_all(conn: apsw.Connection) -> list[list[drain_phase.EntityWork]]:
    batches: list[list[drain_phase.EntityWork]] = []
    while True:
        claimed = drain_phase._claim(conn, OWNER, drain_phase.CLAIM_BATCH, STALE_CLAIM_MS)
        if claimed.claimed == 0:
            return batches
        if claimed.work:  # a batch of already-satisfied jobs needs no payloads
            batches.append(claimed.work)


async def capture(base_url: str, token: str, project_path: str, concurrency: int, spill: Path) -> Captured:
    """Fetch the listing, then (after an untimed scratch ingest + claim) every dependent payload."""
    started = time.monotonic()
    client = GitLabClient(base_url, token, concurrency=concurrency)
    try:
        project = await client.get_project(project_path)
        pages: dict[Resource, list[list[Fetched[Any]]]] = {
            "issues": [page async for page in client.iter_issues(project.id)],
            "merge_requests": [page async for page in client.iter_merge_requests(project.id)],
        }
        scratch = open_connection(":memory:")
        migrate(scratch)
        _ingest_all(scratch, QuietRun(), project, pages)
        batches = _claim_all(scratch)
        scratch.close()
        with spill.open("wb") as out:
            for batch in batches:
                got = await asyncio.gather(*(
                    fetch_dependents(client, w.project_id, w.kind, w.iid,
                                     [STAGE_FOR_JOB_TYPE[j.job_type] for j in w.jobs])
                    for w in batch
                ))
                if any(f.errors for f in got):
                    raise RuntimeError("a dependent fetch failed; the replay would not match the live sync")
                pickle.dump({(f.kind, f.iid): f for f in got}, out, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        await client.aclose()
    return Captured(project, pages, spill, time.monotonic() - started)


class Stopwatch:
    """Wall and this thread's CPU seconds, accumulated over the sections it times."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def time(self, fn: Any, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args)
        finally:
            self.wall_s += time.perf_counter() - wall
            self.cpu_s += time.thread_time() - cpu


def _drain_dependents(conn: apsw.Connection, run: Any, captured: Captured, watch: Stopwatch) -> None:
    """Claim batch by batch (as the live drain does), writing each batch's parents in hops;
    loading a batch's payloads from the spill file is not timed."""
    with captured.spill.open("rb") as spilled:
        while True:
            claimed = watch.time(drain_phase._claim, conn, OWNER, drain_phase.CLAIM_BATCH, STALE_CLAIM_MS)
            if claimed.claimed == 0:
                return
            if not claimed.work:
                continue  # nothing to fetch in this batch (the scratch claim skipped it too)
            payloads = pickle.load(spilled)
            pairs = [(w, payloads[(w.kind, w.iid)]) for w in claimed.work]
            for start in range(0, len(pairs), run.tuning.hop_parents):
                hop = pairs[start:start + run.tuning.hop_parents]
                watch.time(drain_phase._write_results, conn, run, OWNER, hop)


def _drain_docs(conn: apsw.Connection, run: Any) -> None:
    while docs_phase._drain_batch(conn, run, False).processed:
        pass


def replay(db_path: Path, captured: Captured) -> dict[str, dict[str, float]]:
    """Run the three write phases on a fresh database; wall and CPU seconds per phase."""
    conn = open_connection(db_path)
    migrate(conn)
    run = QuietRun()
    watches = {phase: Stopwatch() for phase in PHASES}
    try:
        watches["ingest"].time(_ingest_all, conn, run, captured.project, captured.pages)
        _drain_dependents(conn, run, captured, watches["dependents"])
        watches["docs"].time(_drain_docs, conn, run)
    finally:
        conn.close()
    return {phase: {"wall_s": w.wall_s, "cpu_s": w.cpu_s} for phase, w in watches.items()}


def table_counts(db_path: Path, tables: tuple[str, ...]) -> dict[str, int]:
    """Row count per table (names come from the benchmark's constants, never input)."""
    conn = open_connection(db_path, readonly=True)
    try:
        counts = {}
        for table in tables:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None  # count(*) always answers one row
            counts[table] = int(row[0])
        return counts
    finally:
        conn.close()
