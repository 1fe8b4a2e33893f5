"""Searchable documents: regenerate exactly the named sources, or drain the global dirty queue.

A document is written only when its content hash (or url/project) differs, so regenerating an
unchanged source costs a read and no write, and embeddings keyed on the hash stay valid. A source
that no longer exists loses its document. ``documents_fts`` follows through the schema's triggers.

Surgical runs call :func:`regenerate_documents` with the keys their ingest touched, then
:func:`~lore_daemon.store.dirty.clear_dirty_if_not_newer`; they never drain the global queue.
Standard sync calls :func:`drain_dirty`. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import apsw

from lore_daemon.store.dirty import clear_dirty_if_not_newer, dirty_keys, record_dirty_failure
from lore_daemon.store.keys import SourceKey, unique_keys
from lore_daemon.store.render import Rendered, render_source

DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class DocsOutcome:
    regenerated_ids: list[int]
    unchanged_ids: list[int]
    deleted: int
    generated_at_ms: int
    failed: list[SourceKey] = field(default_factory=list)  # drain_dirty only: kept dirty, error recorded
    processed: int = 0  # sources looked at (a batch with 0 means the queue is drained)


def content_hash(title: str, content: str) -> str:
    """sha256 over title and content (NUL-separated so the split point is unambiguous)."""
    return hashlib.sha256(f"{title}\x00{content}".encode()).hexdigest()


_SELECT = """
SELECT id, content_hash, url, project_id FROM documents WHERE source_type = ? AND source_id = ?
"""
_INSERT = """
INSERT INTO documents (source_type, source_id, project_id, title, content, content_hash, url, generated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
"""
_UPDATE = """
UPDATE documents SET project_id = ?, title = ?, content = ?, content_hash = ?, url = ?, generated_at = ?
WHERE id = ?
"""


def write_document(
    conn: apsw.Connection, key: SourceKey, rendered: Rendered | None, *, now_ms: int
) -> tuple[Literal["regenerated", "unchanged", "deleted", "absent"], int | None]:
    """Store one rendered document (or delete it when ``rendered`` is None); returns what happened
    and the document id."""
    source_type, source_id = key
    existing = conn.execute(_SELECT, (source_type, source_id)).fetchone()
    if rendered is None:
        if existing is None:
            return ("absent", None)
        conn.execute("DELETE FROM documents WHERE id = ?", (existing[0],))
        return ("deleted", int(existing[0]))
    digest = content_hash(rendered.title, rendered.content)
    if existing is not None:
        doc_id = int(existing[0])
        if tuple(existing[1:]) == (digest, rendered.url, rendered.project_id):
            return ("unchanged", doc_id)
        conn.execute(
            _UPDATE,
            (rendered.project_id, rendered.title, rendered.content, digest, rendered.url, now_ms, doc_id),
        )
        return ("regenerated", doc_id)
    row = conn.execute(
        _INSERT,
        (source_type, source_id, rendered.project_id, rendered.title, rendered.content, digest,
         rendered.url, now_ms),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING yields the new row
    return ("regenerated", int(row[0]))


def regenerate_documents(conn: apsw.Connection, keys: Iterable[SourceKey], *, now_ms: int) -> DocsOutcome:
    """Render and store the documents of exactly ``keys``; ``generated_at`` is ``now_ms``."""
    regenerated: list[int] = []
    unchanged: list[int] = []
    deleted = absent = 0
    for key in unique_keys(keys):
        status, doc_id = write_document(conn, key, render_source(conn, key), now_ms=now_ms)
        if status == "regenerated" and doc_id is not None:
            regenerated.append(doc_id)
        elif status == "unchanged" and doc_id is not None:
            unchanged.append(doc_id)
        elif status == "deleted":
            deleted += 1
        else:
            absent += 1
    processed = len(regenerated) + len(unchanged) + deleted + absent
    return DocsOutcome(regenerated, unchanged, deleted, now_ms, processed=processed)


def drain_dirty(
    conn: apsw.Connection, *, now_ms: int, batch: int = 500, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> DocsOutcome:
    """Standard sync: regenerate one batch of the global dirty queue, oldest first, and clear it.

    Each source runs in its own savepoint: one that fails is rolled back, keeps its dirty row with
    the error recorded, and is passed over once it failed ``max_attempts`` times (until re-dirtied).
    Call repeatedly until a batch comes back empty.
    """
    regenerated: list[int] = []
    unchanged: list[int] = []
    deleted = 0
    done: list[SourceKey] = []
    failed: list[SourceKey] = []
    for key, _queued_at in dirty_keys(conn, limit=batch, max_attempts=max_attempts):
        try:
            with conn:  # savepoint per source
                one = regenerate_documents(conn, [key], now_ms=now_ms)
        except Exception as exc:  # any failure parks this one source, not the whole batch
            record_dirty_failure(conn, key, error=f"{type(exc).__name__}: {exc}")
            failed.append(key)
            continue
        regenerated += one.regenerated_ids
        unchanged += one.unchanged_ids
        deleted += one.deleted
        done.append(key)
    clear_dirty_if_not_newer(conn, done, generated_at_ms=now_ms)
    return DocsOutcome(regenerated, unchanged, deleted, now_ms, failed, processed=len(done) + len(failed))
