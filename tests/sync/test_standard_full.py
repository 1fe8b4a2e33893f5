"""A full standard sync of a big seeded project ends equal to the simulator's truth; a second sync
writes nothing; after 10 issues change upstream, the next sync fetches exactly those 10.

The simulator runs in its own process (real HTTP on loopback) and the store is a real SQLite file.
The first sync runs once for the module; each test then opens its own engine on the same file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lore_daemon import protocol
from lore_daemon.sync.standard import run_standard_sync
from tests.support.engine import Progress

from .support import (
    PROJECT,
    SimProcess,
    assert_consistent,
    assert_matches_truth,
    build_engine,
    connect,
    scalar,
    write_config,
)

ISSUES, MRS, NOTES_PER_ENTITY = 2000, 500, 10


@dataclass
class Synced:
    sim: SimProcess
    config: Path
    db: Path
    first: protocol.SyncResult
    progress: Progress


async def _sync(config: Path, token: str, progress: Progress | None = None) -> protocol.SyncResult:
    engine = build_engine(config, token)
    try:
        return await run_standard_sync(engine, protocol.SyncParams(), progress or Progress())
    finally:
        await engine.aclose()


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    tmp = tmp_path_factory.mktemp("full")
    sim = SimProcess("--seed", "11", "--issues", str(ISSUES), "--mrs", str(MRS),
                     "--notes-per-entity", str(NOTES_PER_ENTITY))
    try:
        config = write_config(tmp, sim.base_url)
        progress = Progress()
        first = asyncio.run(_sync(config, sim.token, progress))
        yield Synced(sim, config, tmp / "lore.db", first, progress)
    finally:
        sim.close()


def _list_requests(log: list[dict[str, Any]]) -> list[str]:
    return [e["path"] for e in log if e["path"].endswith(("/issues", "/merge_requests"))]


def test_full_sync_equals_the_simulators_truth(synced: Synced) -> None:
    result = synced.first
    dump = synced.sim.control.dump(PROJECT)
    notes = sum(len(d["notes"]) for kind in ("issues", "merge_requests")
                for ds in dump["discussions"][kind].values() for d in ds)
    assert (len(dump["issues"]), len(dump["merge_requests"])) == (ISSUES, MRS)
    assert notes >= 20_000

    assert result.status == "succeeded", result.error
    assert result.phase == "done" and result.mode == "standard"
    assert result.counters.issues_ingested == ISSUES and result.counters.mrs_ingested == MRS
    assert result.counters.notes == notes
    assert result.counters.dependent_jobs_failed == 0 and result.entity_failures == []
    assert {"ingest", "dependents", "docs", "embed"} <= set(result.stage_timings_ms)
    assert result.warnings == ["embedding provider is 'none'; embed phase skipped"]
    assert_matches_truth(synced.db, dump)
    assert_consistent(synced.db)
    assert scalar(synced.db, "SELECT count(*) FROM pending_dependent_fetches") == 0
    assert scalar(synced.db, "SELECT count(*) FROM app_locks") == 0
    run = connect(synced.db).execute(
        "SELECT mode, status, phase, counters_json FROM sync_runs WHERE run_id = ?", (result.run_id,)
    ).fetchone()
    assert run[:3] == ("standard", "succeeded", "done")
    begun = [n.phase for n in synced.progress.notes if n.event == "begin"]
    assert begun[1:] == ["ingest", "dependents", "docs", "embed"]


def test_second_sync_writes_nothing(synced: Synced) -> None:
    db = synced.db
    before = {
        table: connect(db).execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("issues", "merge_requests", "raw_payloads", "notes", "discussions", "documents",
                      "sync_cursors")
    }
    synced.sim.control.clear_log()
    result = asyncio.run(_sync(synced.config, synced.sim.token))
    assert result.status == "succeeded", result.error
    counters = result.counters
    assert counters.issues_fetched == counters.mrs_fetched == 0
    assert counters.issues_ingested == counters.mrs_ingested == 0
    assert counters.dependent_jobs_done == 0 and counters.documents_regenerated == 0
    log = synced.sim.control.log()
    # One project lookup and one (short) page per list: nothing else goes over the wire.
    assert sorted(e["path"] for e in log) == sorted(
        ["/api/v4/projects/group%2Fproject", "/api/v4/projects/1/issues", "/api/v4/projects/1/merge_requests"]
    )
    assert counters.requests == len(log) == 3
    for table, rows in before.items():
        assert connect(db).execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() == rows, table


def test_incremental_sync_fetches_exactly_the_changed_issues(synced: Synced) -> None:
    control = synced.sim.control
    bumped = [17, 230, 999, 1500, 2000]
    noted = [3, 404, 1234, 1777, 1999]
    for iid in bumped:
        control.mutate("bump_issue", project=PROJECT, iid=iid)
    for iid in noted:
        control.mutate("add_note", project=PROJECT, kind="issue", iid=iid, body=f"new note on {iid}")
    control.clear_log()

    result = asyncio.run(_sync(synced.config, synced.sim.token))

    assert result.status == "succeeded", result.error
    assert result.counters.issues_fetched == 10 and result.counters.issues_ingested == 10
    assert result.counters.mrs_fetched == 0
    log = control.log()
    dependent_paths = [e["path"] for e in log if "/issues/" in e["path"] or "/merge_requests/" in e["path"]]
    touched = {int(p.split("/issues/")[1].split("/")[0]) for p in dependent_paths}
    assert touched == set(bumped + noted)
    assert not any("/merge_requests/" in p for p in dependent_paths)
    # Per changed issue: its discussions and the three resource-event lists, nothing more.
    assert len(dependent_paths) == 10 * 4
    assert_matches_truth(synced.db, control.dump(PROJECT))
    assert_consistent(synced.db)
