"""Stale-write protection, the untouched dependent queue, scoped docs and embedding
(docs/surgical-sync.md, invariants 6-9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import msgspec

from lore_daemon import protocol
from lore_daemon.engine import Engine
from lore_daemon.gitlab.models import Fetched, Issue, Project
from lore_daemon.sim import SimServer
from lore_daemon.store import ledger, queue
from lore_daemon.store.connection import open_connection
from lore_daemon.store.entities import ingest_issue, upsert_project
from lore_daemon.sync.surgical import run_surgical_sync
from lore_daemon.timeutil import now_ms
from tests.support.engine import Progress

from .conftest import connect, rows, surgical


def _get(sim: SimServer, path: str) -> bytes:
    response = httpx.get(
        f"{sim.base_url}/api/v4{path}", headers={"PRIVATE-TOKEN": sim.token}, trust_env=False
    )
    response.raise_for_status()
    return response.content


def _concurrent_ingest(
    db_path: Path, sim: SimServer, iid: int, *, edit: dict[str, Any] | None = None
) -> None:
    """Another writer (think: a standard sync in another daemon) ingests issue ``iid`` right now."""
    project_raw = _get(sim, "/projects/1")
    raw = _get(sim, f"/projects/1/issues/{iid}")
    if edit:
        raw = json.dumps({**json.loads(raw), **edit}).encode()
    conn = open_connection(db_path)
    try:
        with conn:
            upsert_project(conn, msgspec.json.decode(project_raw, type=Project), now_ms=now_ms())
            ingest_issue(conn, 1, Fetched(msgspec.json.decode(raw, type=Issue), raw), now_ms=now_ms())
    finally:
        conn.close()


def _on_first(progress: Progress, phase: str, event: str, action: Any) -> None:
    fired: list[bool] = []

    def hook(note: protocol.ProgressNotification) -> None:
        if not fired and note.phase == phase and note.event == event and note.entity is None:
            fired.append(True)
            action(note)

    progress.hooks.append(hook)


def _issue_row(db_path: Path, iid: int) -> tuple[Any, ...]:
    conn = connect(db_path)
    try:
        row = conn.execute(
            "SELECT gitlab_id, updated_at, last_seen_at, upvotes, raw_payload_id,"
            " discussions_synced_for_updated_at"
            " FROM issues WHERE project_id = 1 AND iid = ?",
            (iid,),
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


def _skipped_entity(result: protocol.SyncResult, iid: int) -> protocol.EntityResult:
    entity = next(e for e in result.entities if e.kind == "issue" and e.iid == iid)
    assert entity.outcome == "skippedStale"
    assert entity.dependents == {} and entity.document_ids == [], (
        "a skipped entity gets no dependents or docs"
    )
    return entity


async def test_equal_updated_at_but_newer_last_seen_is_skipped(engine: Engine, sim: SimServer) -> None:
    sim.control.set_latency(5)  # preflight takes a few ms, so "after it started" is a clear instant
    progress = Progress()
    # After our preflight fetched #4, another writer stores a fresher fetch of the SAME version
    # (upvotes changed, updated_at did not, as GitLab does for votes).
    upvotes = json.loads(_get(sim, "/projects/1/issues/4"))["upvotes"]
    _on_first(
        progress,
        "preflight",
        "end",
        lambda _: _concurrent_ingest(engine.db.path, sim, 4, edit={"upvotes": upvotes + 5}),
    )
    result = await run_surgical_sync(engine, surgical(issues=[4, 5]), progress)
    assert result.status == "succeeded"
    _skipped_entity(result, 4)
    assert result.counters.skipped_stale == 1 and result.counters.issues_ingested == 1
    _, _, _, stored_upvotes, _, watermark = _issue_row(engine.db.path, 4)
    assert stored_upvotes == upvotes + 5, "the fresher concurrent write must survive"
    assert watermark is None, "no dependents were written for the skipped entity"
    assert next(e for e in result.entities if e.iid == 5).outcome == "ingested"


async def test_newer_local_updated_at_is_skipped(engine: Engine, sim: SimServer) -> None:
    progress = Progress()

    def newer_version_lands(_: protocol.ProgressNotification) -> None:
        sim.control.mutate("bump_issue", project="group/project", iid=6)  # GitLab moves on...
        _concurrent_ingest(engine.db.path, sim, 6)  # ...and another writer stores the newer version

    _on_first(progress, "preflight", "end", newer_version_lands)
    result = await run_surgical_sync(engine, surgical(issues=[6]), progress)
    entity = _skipped_entity(result, 6)
    _, local_updated, _, _, _, _ = _issue_row(engine.db.path, 6)
    assert entity.updated_at is not None
    assert local_updated > int(entity.updated_at.timestamp() * 1000), "the newer local row is kept"
    assert result.status == "succeeded" and result.counters.skipped_stale == 1


async def test_surgical_run_leaves_dependent_queue_untouched(engine: Engine, sim: SimServer) -> None:
    conn = open_connection(engine.db.path)
    try:
        with conn:
            now = now_ms()
            jobs = [
                ("issue", 1, "discussions"),
                ("issue", 1, "resource_events"),
                ("merge_request", 1, "mr_diffs"),
                ("merge_request", 1, "mr_closes_issues"),
                ("issue", 20, "discussions"),
                ("issue", 2, "discussions"),
            ]
            for n, (entity_type, iid, job_type) in enumerate(jobs):
                queue.enqueue_job(
                    conn,
                    project_id=1,
                    entity_type=entity_type,
                    entity_iid=iid,
                    entity_id=9000 + n,
                    job_type=job_type,
                    target_updated_at=now - 1000,
                    now_ms=now - 5000 + n,
                )
            claimed = queue.claim_jobs(
                conn, owner="other-daemon", now_ms=now, limit=3, stale_claim_ms=600_000
            )
            queue.fail_job(conn, claimed[0].id, owner="other-daemon", error="HTTP 500", now_ms=now)
    finally:
        conn.close()
    before = rows(engine.db.path, "pending_dependent_fetches")
    assert len(before) == 6 and sum(1 for r in before if r[8] is not None) == 2  # two still locked
    result = await run_surgical_sync(engine, surgical(issues=[1, 2, 20], mrs=[1]))
    assert result.status == "succeeded"
    assert all(
        set(e.dependents.values()) <= {"synced", "unchanged"} and e.dependents for e in result.entities
    )
    assert rows(engine.db.path, "pending_dependent_fetches") == before


def _documents(db_path: Path) -> dict[int, tuple[Any, ...]]:
    return {r[0]: r for r in rows(db_path, "documents")}


async def test_surgical_docs_scope_ignores_preexisting_dirty_rows(engine: Engine, sim: SimServer) -> None:
    await run_surgical_sync(engine, surgical(issues=[10, 11], mrs=[4]))
    db_path = engine.db.path
    conn = open_connection(db_path)
    try:
        (other_issue,) = conn.execute("SELECT gitlab_id FROM issues WHERE iid = 10").fetchone()
        (other_discussion,) = conn.execute("SELECT min(id) FROM discussions").fetchone()
        with conn:  # other sources waiting for the standard sync's docs phase
            conn.executemany(
                "INSERT INTO dirty_sources (source_type, source_id, queued_at, attempt_count, last_error)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    ("issue", other_issue, 1000, 0, None),
                    ("discussion", other_discussion, 2000, 2, "boom"),
                    ("merge_request", 424242, 3000, 0, None),
                ],
            )
    finally:
        conn.close()
    other_dirty = rows(db_path, "dirty_sources")
    other_docs = _documents(db_path)
    target_issue_1 = next(i for i in sim.control.dump("group/project")["issues"] if i["iid"] == 1)["id"]

    progress = Progress()
    re_dirty: dict[str, int] = {}

    def re_dirty_issue_1(_: protocol.ProgressNotification) -> None:
        """A re-dirty of a touched key that lands after its document was generated."""
        writer = open_connection(db_path)
        try:
            (generated_at,) = writer.execute(
                "SELECT generated_at FROM documents WHERE source_type = 'issue' AND source_id = ?",
                (target_issue_1,),
            ).fetchone()
            with writer:
                writer.execute(
                    "INSERT INTO dirty_sources (source_type, source_id, queued_at) VALUES ('issue', ?, ?)"
                    " ON CONFLICT (source_type, source_id) DO UPDATE SET queued_at = excluded.queued_at",
                    (target_issue_1, generated_at + 1),
                )
            re_dirty["queued_at"] = generated_at + 1
        finally:
            writer.close()

    _on_first(progress, "docs", "report", re_dirty_issue_1)
    result = await run_surgical_sync(engine, surgical(issues=[1, 2], mrs=[3]), progress)
    assert result.status == "succeeded" and re_dirty

    after_docs = _documents(db_path)
    assert {i: after_docs[i] for i in other_docs} == other_docs, "other sources' documents are untouched"
    run_doc_ids = [d for e in result.entities for d in e.document_ids]
    assert run_doc_ids and all(d not in other_docs for d in run_doc_ids)
    generated = {after_docs[d][8] for d in run_doc_ids}
    assert len(generated) == 1, "every touched key's document was regenerated by this run"
    run_keys = {(after_docs[d][1], after_docs[d][2]) for d in run_doc_ids}
    assert ("issue", target_issue_1) in run_keys
    dirty_after = rows(db_path, "dirty_sources")
    assert [r for r in dirty_after if (r[0], r[1]) not in run_keys] == other_dirty
    assert [r[:3] for r in dirty_after if (r[0], r[1]) in run_keys] == [
        ("issue", target_issue_1, re_dirty["queued_at"])
    ], "the late re-dirty survives; every other touched key's dirty row is cleared"


async def test_surgical_embed_scope_is_run_documents_only(engine: Engine, sim: SimServer) -> None:
    await run_surgical_sync(engine, surgical(issues=[1, 2, 8]))
    before = _documents(engine.db.path)
    sim.control.mutate("add_note", project="group/project", kind="issue", iid=2, body="a fresh comment")
    result = await run_surgical_sync(engine, surgical(issues=[1, 2, 9]))
    assert result.status == "succeeded"
    after = _documents(engine.db.path)
    changed = {i for i, row in after.items() if before.get(i) != row}
    conn = connect(engine.db.path)
    try:
        run = ledger.get_run(conn, result.run_id or "")
    finally:
        conn.close()
    assert run is not None and run.surgical_summary is not None
    embed_ids = run.surgical_summary["embedDocumentIds"]
    assert sorted(embed_ids) == sorted(changed), "embed exactly the documents this run regenerated"
    assert sorted(embed_ids) == sorted(run.surgical_summary["documentIds"])
    by_iid = {e.iid: e for e in result.entities}
    assert by_iid[1].outcome == "unchanged" and not set(by_iid[1].document_ids) & set(embed_ids)
    assert set(by_iid[9].document_ids) <= set(embed_ids) and by_iid[9].document_ids
    assert set(embed_ids) & set(by_iid[2].document_ids), "issue 2's new discussion is embedded"
    assert len(by_iid[2].document_ids) > len(set(by_iid[2].document_ids) & set(embed_ids)), (
        "issue 2's unchanged discussions are not re-embedded"
    )
    assert any("provider" in w for w in result.warnings) and result.counters.embedded == 0
    assert rows(engine.db.path, "app_locks") == []
