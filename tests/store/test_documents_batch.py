"""Batched document writes: one multi-row statement per chunk, yet a failing source stays alone."""

from __future__ import annotations

from typing import Any

import apsw
import pytest

from lore_daemon.store import documents as documents_module
from lore_daemon.store.dirty import dirty_keys, mark_dirty
from lore_daemon.store.documents import drain_dirty, regenerate_documents
from lore_daemon.store.entities import ingest_issue
from lore_daemon.store.render import Rendered


def _issues(conn: apsw.Connection, gl: Any, count: int) -> list[tuple[str, int]]:
    with conn:
        return [
            ingest_issue(conn, gl.project_id, gl.issue(iid), now_ms=gl.NOW).key for iid in range(1, count + 1)
        ]


def _stored(conn: apsw.Connection) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {
        (str(t), int(i)): (title, content, digest)
        for t, i, title, content, digest in conn.execute(
            "SELECT source_type, source_id, title, content, content_hash FROM documents"
        )
    }


def test_a_source_whose_write_fails_is_parked_alone_and_the_rest_of_its_chunk_commits(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
):
    keys = _issues(store_db, gl, 7)
    poisoned = keys[3]
    real = documents_module.render_sources

    def title_less(conn: apsw.Connection, batch: list[tuple[str, int]]) -> Any:
        rendered = real(conn, batch)
        good = rendered.get(poisoned)
        if good is not None:  # NOT NULL title: the INSERT of this row fails
            rendered[poisoned] = Rendered(None, good.content, good.url, good.project_id)  # type: ignore[arg-type]
        return rendered

    monkeypatch.setattr(documents_module, "render_sources", title_less)
    with store_db:
        out = drain_dirty(store_db, now_ms=gl.NOW + 1, write_chunk=3)  # chunks [0-2], [3-5], [6]
    assert out.failed == [poisoned] and out.processed == 7 and len(out.regenerated_ids) == 6
    assert set(_stored(store_db)) == set(keys) - {poisoned}
    assert [key for key, _ in dirty_keys(store_db, limit=10)] == [poisoned]
    last_error = store_db.execute("SELECT attempt_count, last_error FROM dirty_sources").fetchone()
    assert last_error[0] == 1 and "NOT NULL" in last_error[1]


def test_batched_writes_match_one_by_one_regeneration(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
):
    keys = _issues(store_db, gl, 5)
    with store_db:
        one_by_one = [regenerate_documents(store_db, [key], now_ms=gl.NOW + 1) for key in keys]
    alone = _stored(store_db)
    with store_db:
        store_db.execute("DELETE FROM documents")
        mark_dirty(store_db, keys, now_ms=gl.NOW)
    with store_db:
        out = drain_dirty(store_db, now_ms=gl.NOW + 2, write_chunk=2)
    assert _stored(store_db) == alone and len(out.regenerated_ids) == len(one_by_one) == 5
    assert out.regenerated_ids == sorted(out.regenerated_ids)  # ids come out in key order
    hits = store_db.execute("SELECT count(*) FROM documents_fts WHERE documents_fts MATCH 'issue'").fetchone()
    assert hits[0] == 5


def test_changed_documents_are_updated_in_one_statement_and_fts_follows(
    store_db: apsw.Connection, gl: Any, monkeypatch: pytest.MonkeyPatch
):
    keys = _issues(store_db, gl, 4)
    with store_db:
        first = regenerate_documents(store_db, keys, now_ms=gl.NOW + 1)
        for iid in range(1, 5):
            changed = gl.issue(iid, title=f"zanzibar {iid}", updated_ms=gl.NOW + 5)
            ingest_issue(store_db, gl.project_id, changed, now_ms=gl.NOW + 2)
    with store_db:
        second = regenerate_documents(store_db, keys, now_ms=gl.NOW + 3, write_chunk=3)
    assert second.regenerated_ids == first.regenerated_ids  # same rows, updated in place
    titles = {title for title, _, _ in _stored(store_db).values()}
    assert titles == {f"#{i} zanzibar {i}" for i in range(1, 5)}
    hits = store_db.execute("SELECT count(*) FROM documents_fts WHERE documents_fts MATCH ?", ("zanzibar",))
    assert hits.fetchone()[0] == 4
