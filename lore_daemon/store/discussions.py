"""Discussions and notes: full refresh per parent, with stable local ids and minimal dirtying.

A discussion's local id is its document's ``source_id``, so it must survive refreshes: rows are
upserted by GitLab's discussion id, never deleted and re-inserted. Each discussion is compared with
what is stored through a content signature built the same way from both sides; an unchanged
discussion gets no write at all, so an unchanged refresh dirties nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import apsw
import msgspec

from lore_daemon.gitlab.models import Discussion, Note
from lore_daemon.store.dirty import mark_dirty
from lore_daemon.store.keys import SourceKey, discussion_key, entity_type_of
from lore_daemon.store.multirow import insert_rows
from lore_daemon.store.upsert import Upsert
from lore_daemon.timeutil import iso_to_ms

NoteRow = tuple[Any, ...]
Signature = tuple[int, tuple[NoteRow, ...]]

_LOAD = """
SELECT d.id, d.gitlab_id, d.individual_note,
       n.gitlab_id, n.note_type, n.body, n.author_id, n.author_username, n.system, n.resolvable,
       n.resolved, n.created_at, n.updated_at, n.position_old_path, n.position_new_path,
       n.position_old_line, n.position_new_line, n.position_json
FROM discussions AS d LEFT JOIN notes AS n ON n.discussion_id = d.id
WHERE d.noteable_type = ? AND d.noteable_id = ?
"""

_HAS_ANY = "SELECT 1 FROM discussions WHERE noteable_type = ? AND noteable_id = ? LIMIT 1"
_PARENTS_WITH_ANY = """
SELECT DISTINCT noteable_id FROM discussions
WHERE noteable_type = ?1 AND noteable_id IN (SELECT value FROM json_each(?2))
"""

_DISCUSSION_UPSERT = Upsert(
    "discussions",
    ("gitlab_id", "project_id", "noteable_type", "noteable_id", "individual_note", "created_at",
     "updated_at"),
    key=("noteable_type", "noteable_id", "gitlab_id"),  # unique per parent (migration 0007)
    returning="id, gitlab_id",
)

_NOTE_UPSERT = Upsert(
    "notes",
    ("gitlab_id", "note_type", "body", "author_id", "author_username", "system", "resolvable",
     "resolved", "created_at", "updated_at", "position_old_path", "position_new_path",
     "position_old_line", "position_new_line", "position_json", "discussion_id", "project_id"),
    key=("gitlab_id",),
)

# The notes of the rewritten discussions that none of them sends any more (one statement per parent).
_DELETE_GONE_NOTES = """
DELETE FROM notes WHERE discussion_id IN (SELECT value FROM json_each(?1))
AND gitlab_id NOT IN (SELECT value FROM json_each(?2))
"""


def note_row(note: Note) -> NoteRow:
    """A note as the tuple of its stored columns (in ``_LOAD`` order), the unit of comparison."""
    created = iso_to_ms(note.created_at)
    position = note.position
    return (
        note.id,
        note.type,
        note.body,
        note.author.id if note.author else None,
        note.author.username if note.author else None,
        int(note.system),
        int(bool(note.resolvable)),
        int(bool(note.resolved)),
        created,
        iso_to_ms(note.updated_at) if note.updated_at else created,
        position.old_path if position else None,
        position.new_path if position else None,
        position.old_line if position else None,
        position.new_line if position else None,
        msgspec.json.encode(position).decode() if position else None,
    )


def _signature(individual_note: bool, notes: list[NoteRow]) -> Signature:
    return (int(individual_note), tuple(sorted(notes, key=lambda row: int(row[0]))))


def _parents_with_discussions(
    conn: apsw.Connection, noteable_type: str, parent_ids: list[int]
) -> set[int]:
    """Which of the parents have any stored discussion (one query for a whole group)."""
    if len(parent_ids) == 1:
        found = conn.execute(_HAS_ANY, (noteable_type, parent_ids[0])).fetchone()
        return set(parent_ids) if found is not None else set()
    found_ids = conn.execute(_PARENTS_WITH_ANY, (noteable_type, msgspec.json.encode(parent_ids)))
    return {int(row[0]) for row in found_ids}


def _stored(conn: apsw.Connection, noteable_type: str, parent_id: int) -> dict[str, tuple[int, Signature]]:
    """gitlab discussion id -> (local id, signature) for every stored discussion of the parent."""
    grouped: dict[str, tuple[int, int, list[NoteRow]]] = {}
    for row in conn.execute(_LOAD, (noteable_type, parent_id)):
        local_id, gitlab_id, individual = row[0], str(row[1]), row[2]
        _, _, notes = grouped.setdefault(gitlab_id, (int(local_id), int(individual), []))
        if row[3] is not None:
            notes.append(tuple(row[3:]))
    return {gid: (lid, _signature(bool(ind), notes)) for gid, (lid, ind, notes) in grouped.items()}


@dataclass(frozen=True, slots=True)
class ParentThreads:
    """One parent's complete list of discussions, as GitLab sent it."""

    project_id: int
    parent_kind: str
    parent_id: int
    discussions: list[Discussion]


# A discussion to write: (its parent's index in the call, the parent, the discussion, its note rows).
Changed = tuple[int, ParentThreads, Discussion, list[NoteRow]]


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a refresh did to one parent: dirtied keys, what it now holds, whether it wrote."""

    touched: frozenset[SourceKey]
    discussions: int
    notes: int
    changed: bool


def refresh_discussions(
    conn: apsw.Connection,
    *,
    project_id: int,
    parent_kind: str,
    parent_id: int,
    discussions: list[Discussion],
    now_ms: int,
) -> tuple[frozenset[SourceKey], int, int, bool]:
    """Bring one parent's discussions in line with ``discussions`` (see ``refresh_many``).
    Returns (dirtied keys, discussion count, note count, whether anything was written)."""
    done = refresh_many(conn, [ParentThreads(project_id, parent_kind, parent_id, discussions)], now_ms=now_ms)
    return done[0].touched, done[0].discussions, done[0].notes, done[0].changed


def refresh_many(conn: apsw.Connection, parents: list[ParentThreads], *, now_ms: int) -> list[Refreshed]:
    """Full refresh of several parents' discussions at once, one result per parent, in order.

    Only new or changed discussions are written, and those of every parent together: one
    multi-row upsert for the discussions, one for their notes, one delete of the notes they no
    longer send, one dirty mark. Statements, not rows, were the cost of refreshing parent by
    parent. The upsert's local ids are matched back by GitLab discussion id, so one that appears
    under two parents of the same call (never seen from GitLab) is refreshed parent by parent.
    """
    claimed: set[str] = set()
    for parent in parents:
        sent = {discussion.id for discussion in parent.discussions}
        if sent & claimed:
            return [r for one in parents for r in refresh_many(conn, [one], now_ms=now_ms)]
        claimed |= sent
    stored_by_parent: dict[int, dict[str, tuple[int, Signature]]] = {}
    for noteable_type in {entity_type_of(parent.parent_kind) for parent in parents}:
        ids = [p.parent_id for p in parents if entity_type_of(p.parent_kind) == noteable_type]
        for parent_id in _parents_with_discussions(conn, noteable_type, ids):
            stored_by_parent[parent_id] = _stored(conn, noteable_type, parent_id)
    changed: list[Changed] = []
    gone: list[tuple[int, int]] = []  # (parent index, local id)
    results: list[tuple[int, int, bool]] = []  # discussions, notes, changed
    for index, parent in enumerate(parents):
        stored = stored_by_parent.get(parent.parent_id, {})
        incoming = {discussion.id: discussion for discussion in parent.discussions}  # last copy wins
        note_count = 0
        writes = False
        for gitlab_id, discussion in incoming.items():
            rows = list({row[0]: row for row in map(note_row, discussion.notes)}.values())
            note_count += len(rows)
            known = stored.get(gitlab_id)
            if known is not None and known[1] == _signature(discussion.individual_note, rows):
                continue
            changed.append((index, parent, discussion, rows))
            writes = True
        for gitlab_id, (local_id, _) in stored.items():
            if gitlab_id not in incoming:
                gone.append((index, local_id))
                writes = True
        results.append((len(incoming), note_count, writes))
    touched: list[set[SourceKey]] = [set() for _ in parents]
    if changed:
        for index, key in _write_discussions(conn, changed):
            touched[index].add(key)
    if gone:
        conn.executemany("DELETE FROM discussions WHERE id = ?", [(local_id,) for _, local_id in gone])
        for index, local_id in gone:
            touched[index].add(discussion_key(local_id))
    mark_dirty(conn, [key for keys in touched for key in keys], now_ms=now_ms)
    return [
        Refreshed(frozenset(keys), n_discussions, n_notes, wrote)
        for keys, (n_discussions, n_notes, wrote) in zip(touched, results, strict=True)
    ]


def _write_discussions(conn: apsw.Connection, changed: list[Changed]) -> list[tuple[int, SourceKey]]:
    """Upsert the discussions (keeping their local ids), then replace their notes; their keys."""
    newest = conn.execute("SELECT max(id) FROM discussions").fetchone()
    last_existing = -1 if newest is None or newest[0] is None else int(newest[0])
    upserted = insert_rows(
        conn,
        _DISCUSSION_UPSERT.head,
        [
            (discussion.id, parent.project_id, entity_type_of(parent.parent_kind), parent.parent_id,
             int(discussion.individual_note),
             min((row[8] for row in rows), default=None), max((row[9] for row in rows), default=None))
            for _, parent, discussion, rows in changed
        ],
        _DISCUSSION_UPSERT.tail,
    )
    local_ids = {str(gitlab_id): int(local_id) for local_id, gitlab_id in upserted}
    # A discussion inserted just now (id above the previous maximum) cannot have notes yet.
    existed = [local_ids[d.id] for _, _, d, _ in changed if local_ids[d.id] <= last_existing]
    if existed:
        keep = [row[0] for _, _, _, rows in changed for row in rows]
        conn.execute(_DELETE_GONE_NOTES, (msgspec.json.encode(existed), msgspec.json.encode(keep)))
    note_rows = [
        (*row, local_ids[discussion.id], parent.project_id)
        for _, parent, discussion, rows in changed for row in rows
    ]
    insert_rows(conn, _NOTE_UPSERT.head, note_rows, _NOTE_UPSERT.tail)
    return [(index, discussion_key(local_ids[discussion.id])) for index, _, discussion, _ in changed]


def delete_parent_discussions(
    conn: apsw.Connection, *, parent_kind: str, parent_id: int, now_ms: int
) -> frozenset[SourceKey]:
    """Drop every discussion of a parent that no longer exists; their documents go with them."""
    rows = conn.execute(
        "DELETE FROM discussions WHERE noteable_type = ? AND noteable_id = ? RETURNING id",
        (entity_type_of(parent_kind), parent_id),
    ).fetchall()
    keys = frozenset(discussion_key(cast(int, row[0])) for row in rows)
    mark_dirty(conn, keys, now_ms=now_ms)
    return keys
