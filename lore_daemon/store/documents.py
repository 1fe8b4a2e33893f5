"""Searchable documents: regenerate exactly the named sources, or drain the global dirty queue.

A document is written only when its content hash (or url/project) differs, so regenerating an
unchanged source costs a read and no write, and embeddings keyed on the hash stay valid. A source
that no longer exists loses its document. ``documents_fts`` follows through the schema's triggers.

Sources are rendered a batch at a time (``store/render.py``: a handful of set-based queries for
the whole batch instead of 3-7 point queries per source).

Writes are batched: new documents go in as one multi-row INSERT and changed ones as one multi-row
UPDATE per chunk of ``write_chunk`` documents (``Tuning.write_chunk``). FTS5 flushes its pending
index data at the end of every statement that touches it, so one statement per document paid a
segment write (and later merges) per document; one per chunk cut the document write cost by about
3x. A statement is atomic, so when a chunk fails nothing of it was written and its documents are
retried one by one: a source that fails alone is still isolated.

Surgical runs call :func:`regenerate_documents` with the keys their ingest touched, then
:func:`~lore_daemon.store.dirty.clear_dirty_if_not_newer`; they never drain the global queue.
Standard sync calls :func:`drain_dirty`. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import apsw
import msgspec

from lore_daemon.store.dirty import clear_dirty_if_not_newer, dirty_keys, record_dirty_failure
from lore_daemon.store.keys import SourceKey, unique_keys
from lore_daemon.store.render import Rendered, render_sources
from lore_daemon.tuning import DEFAULT_TUNING

DEFAULT_MAX_ATTEMPTS = 3
WRITE_CHUNK = DEFAULT_TUNING.write_chunk  # the default; the engine's Tuning passes its own


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


# One query per source type with a flat id array: the UNIQUE (source_type, source_id) index is
# searched directly, without extracting both parts of every key from JSON (~1.4x faster).
_EXISTING = """
SELECT source_id, id, content_hash, url, project_id FROM documents
WHERE source_type = ? AND source_id IN (SELECT value FROM json_each(?))
"""
_INSERT_HEAD = """
INSERT INTO documents (source_type, source_id, project_id, title, content, content_hash, url, generated_at)
VALUES """
_INSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_TAIL = " RETURNING source_type, source_id, id"
_UPDATE_HEAD = "WITH v (id, project_id, title, content, content_hash, url, generated_at) AS (VALUES "
_UPDATE_ROW = "(?, ?, ?, ?, ?, ?, ?)"
_UPDATE_TAIL = """)
UPDATE documents SET project_id = v.project_id, title = v.title, content = v.content,
    content_hash = v.content_hash, url = v.url, generated_at = v.generated_at
FROM v WHERE documents.id = v.id
"""

Existing = tuple[int, str, str | None, int | None]  # document id, content hash, url, project id
Status = Literal["regenerated", "unchanged", "deleted", "absent"]
OnError = Callable[[SourceKey, Exception], None]
WriteKind = Literal["insert", "update"]
Chunk = list[tuple[SourceKey, tuple[Any, ...]]]  # key, bound values


@lru_cache(maxsize=2 * WRITE_CHUNK)
def _multi_row_sql(kind: WriteKind, rows: int) -> str:
    """A multi-row statement of ``rows`` placeholder groups (fixed text per size: cached by apsw)."""
    if kind == "insert":
        return _INSERT_HEAD + ", ".join([_INSERT_ROW] * rows) + _INSERT_TAIL
    return _UPDATE_HEAD + ", ".join([_UPDATE_ROW] * rows) + _UPDATE_TAIL


def existing_documents(conn: apsw.Connection, keys: list[SourceKey]) -> dict[SourceKey, Existing]:
    """The stored document (id, hash, url, project) of each key that has one (a query per type)."""
    ids_by_type: dict[str, list[int]] = {}
    for source_type, source_id in keys:
        ids_by_type.setdefault(source_type, []).append(source_id)
    found: dict[SourceKey, Existing] = {}
    for source_type, ids in ids_by_type.items():
        for source_id, doc_id, digest, url, project_id in conn.execute(
            _EXISTING, (source_type, msgspec.json.encode(ids).decode())
        ):
            found[(source_type, int(source_id))] = (int(doc_id), str(digest), url, project_id)
    return found


class _DocumentBatch:
    """Collects one batch's document writes and applies them in few statements.

    ``results`` maps every key that went through to (status, document id); a key whose write
    failed is reported to ``on_error`` (or the error propagates when there is none) instead.
    """

    def __init__(
        self, conn: apsw.Connection, now_ms: int, on_error: OnError | None, write_chunk: int
    ) -> None:
        self.conn = conn
        self.write_chunk = write_chunk
        self.now_ms = now_ms
        self.on_error = on_error
        self.results: dict[SourceKey, tuple[Status, int | None]] = {}
        self._inserts: Chunk = []
        self._updates: Chunk = []

    def add(self, key: SourceKey, rendered: Rendered | None, existing: Existing | None) -> None:
        if rendered is None:
            if existing is None:
                self.results[key] = ("absent", None)
                return
            self.conn.execute("DELETE FROM documents WHERE id = ?", (existing[0],))  # one statement
            self.results[key] = ("deleted", existing[0])
            return
        digest = content_hash(rendered.title, rendered.content)
        if existing is None:
            self._inserts.append(
                (key, (*key, rendered.project_id, rendered.title, rendered.content, digest, rendered.url,
                       self.now_ms))
            )
        elif existing[1:] == (digest, rendered.url, rendered.project_id):
            self.results[key] = ("unchanged", existing[0])
        else:
            self._updates.append((key, (existing[0], rendered.project_id, rendered.title, rendered.content,
                                        digest, rendered.url, self.now_ms)))

    def flush(self) -> None:
        size = self.write_chunk
        for start in range(0, len(self._updates), size):
            self._apply("update", self._updates[start:start + size])
        for start in range(0, len(self._inserts), size):
            self._apply("insert", self._inserts[start:start + size])
        self._inserts, self._updates = [], []

    def _apply(self, kind: WriteKind, chunk: Chunk) -> None:
        try:
            self._run(kind, chunk)
            return
        except Exception as exc:
            if len(chunk) == 1:
                self._failed(chunk[0][0], exc)
                return
        for one in chunk:  # the chunk's statement rolled back as a whole: retry each alone
            try:
                self._run(kind, [one])
            except Exception as exc:
                self._failed(one[0], exc)

    def _failed(self, key: SourceKey, exc: Exception) -> None:
        if self.on_error is None:
            raise exc
        self.on_error(key, exc)

    def _run(self, kind: WriteKind, chunk: Chunk) -> None:
        params = [value for _, row in chunk for value in row]
        if kind == "update":
            self.conn.execute(_multi_row_sql("update", len(chunk)), params)
            for key, row in chunk:
                self.results[key] = ("regenerated", int(row[0]))
            return
        for source_type, source_id, doc_id in self.conn.execute(_multi_row_sql("insert", len(chunk)), params):
            self.results[(str(source_type), int(source_id))] = ("regenerated", int(doc_id))


def _outcome(
    keys: list[SourceKey], batch: _DocumentBatch, now_ms: int, failed: list[SourceKey]
) -> DocsOutcome:
    """Tally the batch's results in key order (ids come out in the order the keys were given)."""
    regenerated: list[int] = []
    unchanged: list[int] = []
    deleted = absent = 0
    for key in keys:
        result = batch.results.get(key)
        if result is None:
            continue  # failed
        status, doc_id = result
        if status == "regenerated" and doc_id is not None:
            regenerated.append(doc_id)
        elif status == "unchanged" and doc_id is not None:
            unchanged.append(doc_id)
        elif status == "deleted":
            deleted += 1
        else:
            absent += 1
    processed = len(regenerated) + len(unchanged) + deleted + absent + len(failed)
    return DocsOutcome(regenerated, unchanged, deleted, now_ms, failed, processed=processed)


def _render_isolating(
    conn: apsw.Connection, keys: list[SourceKey], on_error: OnError
) -> dict[SourceKey, Rendered | None]:
    """Render ``keys`` as one batch; if that raises, halve it until each failing key stands alone
    and is reported to ``on_error`` (rendering only reads, so a retry is safe)."""
    try:
        return render_sources(conn, keys)
    except Exception as exc:
        if len(keys) == 1:
            on_error(keys[0], exc)
            return {}
    middle = len(keys) // 2
    rendered = _render_isolating(conn, keys[:middle], on_error)
    rendered.update(_render_isolating(conn, keys[middle:], on_error))
    return rendered


def regenerate_documents(
    conn: apsw.Connection, keys: Iterable[SourceKey], *, now_ms: int, write_chunk: int = WRITE_CHUNK
) -> DocsOutcome:
    """Render and store the documents of exactly ``keys``; ``generated_at`` is ``now_ms``."""
    wanted = unique_keys(keys)
    existing = existing_documents(conn, wanted)
    batch = _DocumentBatch(conn, now_ms, on_error=None, write_chunk=write_chunk)
    rendered = render_sources(conn, wanted)
    for key in wanted:
        batch.add(key, rendered[key], existing.get(key))
    batch.flush()
    return _outcome(wanted, batch, now_ms, [])


def drain_dirty(
    conn: apsw.Connection, *, now_ms: int, batch: int = DEFAULT_TUNING.docs_batch,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS, write_chunk: int = WRITE_CHUNK,
) -> DocsOutcome:
    """Standard sync: regenerate one batch of the global dirty queue, oldest first, and clear it.

    Each source stands alone: the batch is rendered at once, and if that raises it is split until
    the failing source renders alone (rendering only reads); a failed write statement leaves
    nothing behind (a failed chunk is retried source by source). A source that fails keeps its
    dirty row with the error recorded, and is passed over once it failed ``max_attempts`` times
    (until re-dirtied). Call repeatedly until a batch comes back empty.
    """
    keys = [key for key, _queued_at in dirty_keys(conn, limit=batch, max_attempts=max_attempts)]
    existing = existing_documents(conn, keys)
    failed: list[SourceKey] = []

    def park(key: SourceKey, exc: Exception) -> None:
        record_dirty_failure(conn, key, error=f"{type(exc).__name__}: {exc}")
        failed.append(key)

    writes = _DocumentBatch(conn, now_ms, on_error=park, write_chunk=write_chunk)
    rendered = _render_isolating(conn, keys, park)
    for key in keys:
        if key not in rendered:
            continue  # its render failed: parked already
        try:
            writes.add(key, rendered[key], existing.get(key))
        except Exception as exc:  # any failure parks this one source, not the whole batch
            park(key, exc)
    writes.flush()
    clear_dirty_if_not_newer(conn, [key for key in keys if key in writes.results], generated_at_ms=now_ms)
    return _outcome(keys, writes, now_ms, failed)
