"""Standard-sync ingest of a whole listing page in a handful of set-based statements.

``entities.ingest_issue`` / ``ingest_merge_request`` apply the ingest rules to one item at a time:
about fifteen statements each (local state, raw payload, users, milestone, row, links, dirty mark,
jobs, cursor). At 10k issues those statements' fixed costs were most of the ingest phase.
``ingest_group`` applies the very same rules (``entities.decide``, ``superseded_payload``,
``renames_parents``) to a page of items at once: one query for every item's local state, then one
multi-row statement per table, in item order, so rows shared between items (users, milestones) end
as if the items had been written one after another.

It takes only the common shape of a page and returns ``None`` for anything else, writing nothing:
the caller then writes the page item by item. That covers a GitLab id or an iid listed twice on
one page (the listing shifted under a concurrent update) and a new item whose iid another local
row still holds (deleted and recreated upstream: ``entities`` evicts the old row). The standard
sync has no stale guard, so ``skipped_stale`` here is only "the local row is newer".

Runs inside the caller's transaction. If it raises, the caller rolls that transaction back and
writes the page item by item, each item atomic on its own (``sync/ingest_phase.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from lore_daemon.gitlab.models import Fetched, Issue, MergeRequest, UserBasic
from lore_daemon.store.dirty import mark_dirty
from lore_daemon.store.entities import (
    Decision,
    IngestOutcome,
    LocalEntityState,
    decide,
    drop_raw,
    local_from_row,
    renames_parents,
    superseded_payload,
)
from lore_daemon.store.entity_sql import (
    ISSUE_SQL,
    MILESTONE_HEAD,
    MILESTONE_TAIL,
    MR_SQL,
    RAW_HEAD,
    RAW_TAIL,
    USER_HEAD,
    USER_TAIL,
    EntitySql,
    issue_row,
    milestone_row,
    mr_row,
    user_row,
)
from lore_daemon.store.keys import EntityKind, SourceKey, discussion_key, entity_key, entity_type_of
from lore_daemon.store.multirow import insert_rows
from lore_daemon.store.queue import JobRow, enqueue_jobs
from lore_daemon.timeutil import iso_to_ms


@dataclass(slots=True)
class _Item:
    fetched: Fetched[Any]
    updated_at_ms: int
    sha: str
    local: LocalEntityState | None
    decision: Decision


def ingest_group(
    conn: apsw.Connection, kind: EntityKind, project_id: int, page: Sequence[Fetched[Any]], *, now_ms: int
) -> list[IngestOutcome] | None:
    """Ingest ``page`` (issues or MRs, by ``kind``) as ``ingest_issue``/``ingest_merge_request``
    would item by item; the outcomes in page order, or ``None`` (nothing written) for a page this
    path does not take (see the module docstring)."""
    sql = ISSUE_SQL if kind == "issue" else MR_SQL
    ids = [f.item.id for f in page]
    iids = [f.item.iid for f in page]
    if len(set(ids)) != len(ids) or len(set(iids)) != len(iids):
        return None
    locals_ = _load_locals(conn, kind, sql, ids)
    new_iids = [f.item.iid for f in page if f.item.id not in locals_]
    if new_iids and _iids_held(conn, sql, project_id, new_iids):
        return None

    items = []
    for f in page:
        updated_at_ms, sha = iso_to_ms(f.item.updated_at), hashlib.sha256(f.raw).hexdigest()
        local = locals_.get(f.item.id)
        items.append(_Item(f, updated_at_ms, sha, local, decide(kind, local, updated_at_ms, sha, None)))
    _enqueue(conn, kind, project_id, items, now_ms)
    changed = [i for i in items if i.decision.status == "ingested"]
    touched = _write(conn, kind, sql, project_id, changed, now_ms) if changed else {}
    return [
        IngestOutcome(
            kind, item.fetched.item.iid, item.fetched.item.id, entity_key(kind, item.fetched.item.id),
            item.decision.status, item.updated_at_ms, frozenset(touched.get(item.fetched.item.id, ())),
        )
        for item in items
    ]


def _load_locals(
    conn: apsw.Connection, kind: EntityKind, sql: EntitySql, ids: list[int]
) -> dict[int, LocalEntityState]:
    rows = conn.execute(sql.local.by_ids, (msgspec.json.encode(ids),))
    return {int(row[0]): local_from_row(kind, row) for row in rows}


def _iids_held(conn: apsw.Connection, sql: EntitySql, project_id: int, iids: list[int]) -> bool:
    """Whether any of these iids (of items with no local row) is held by another local row."""
    return conn.execute(sql.select_by_iids, (project_id, msgspec.json.encode(iids))).fetchone() is not None


def _enqueue(
    conn: apsw.Connection, kind: EntityKind, project_id: int, items: list[_Item], now_ms: int
) -> None:
    entity_type = entity_type_of(kind)
    rows: list[JobRow] = [
        (project_id, entity_type, item.fetched.item.iid, item.fetched.item.id, job_type,
         item.updated_at_ms, now_ms)
        for item in items
        for job_type in item.decision.jobs
    ]
    enqueue_jobs(conn, rows)


def _write(
    conn: apsw.Connection,
    kind: EntityKind,
    sql: EntitySql,
    project_id: int,
    changed: list[_Item],
    now_ms: int,
) -> dict[int, set[SourceKey]]:
    """Write the changed items; the keys each one dirtied, by GitLab id."""
    payload_ids = _store_raws(conn, changed, now_ms)
    entities = [item.fetched.item for item in changed]
    insert_rows(conn, USER_HEAD, [user_row(u) for e in entities for u in _people(e)], USER_TAIL)
    milestones = [milestone_row(e.milestone) for e in entities if e.milestone is not None]
    insert_rows(conn, MILESTONE_HEAD, milestones, MILESTONE_TAIL)
    rows = [
        issue_row(e, project_id, payload_ids[i.sha], now_ms) if kind == "issue"
        else mr_row(e, project_id, payload_ids[i.sha], now_ms)
        for i, e in zip(changed, entities, strict=True)
    ]
    insert_rows(conn, sql.upsert.head, rows, sql.upsert.tail)
    ids_json = msgspec.json.encode([e.id for e in entities])
    pairs_per_table = [[(e.id, label) for e in entities for label in e.labels]] + [
        [(e.id, uid) for e in entities for uid in _linked(e)[n]] for n in range(len(sql.people))
    ]
    for links, pairs in zip((sql.labels, *sql.people), pairs_per_table, strict=True):
        conn.execute(links.delete_many, (ids_json,))
        insert_rows(conn, links.insert_head, pairs)

    touched = {item.fetched.item.id: {entity_key(kind, item.fetched.item.id)} for item in changed}
    retitled = []
    for item in changed:
        superseded = superseded_payload(item.local, payload_ids[item.sha])
        if superseded is not None:
            drop_raw(conn, superseded)
        if renames_parents(item.local, item.fetched.item):
            retitled.append(item.fetched.item.id)
    if retitled:
        for parent_id, discussion_id in conn.execute(
            "SELECT noteable_id, id FROM discussions WHERE noteable_type = ?"
            " AND noteable_id IN (SELECT value FROM json_each(?))",
            (entity_type_of(kind), msgspec.json.encode(retitled)),
        ):
            touched[int(parent_id)].add(discussion_key(int(discussion_id)))
    mark_dirty(conn, [key for keys in touched.values() for key in keys], now_ms=now_ms)
    return touched


def _store_raws(conn: apsw.Connection, changed: list[_Item], now_ms: int) -> dict[str, int]:
    """Insert the payloads (deduplicated by sha256); the id of each, by sha256."""
    rows = [(i.sha, i.fetched.raw.decode("utf-8", errors="replace"), now_ms) for i in changed]
    ids = {str(sha): int(pid) for pid, sha in insert_rows(conn, RAW_HEAD, rows, RAW_TAIL)}
    missing = [i.sha for i in changed if i.sha not in ids]
    if missing:  # already stored (the conflict that skipped the insert proves it)
        ids.update(
            (str(sha), int(pid))
            for pid, sha in conn.execute(
                "SELECT id, sha256 FROM raw_payloads WHERE sha256 IN (SELECT value FROM json_each(?))",
                (msgspec.json.encode(missing),),
            )
        )
    return ids


def _people(entity: Issue | MergeRequest) -> list[UserBasic]:
    """The users an entity names, each once (the last mention wins), as ``entities`` upserts them."""
    named: list[UserBasic | None] = [entity.author, entity.closed_by]
    if isinstance(entity, MergeRequest):
        named += [entity.merged_by, *entity.assignees, *entity.reviewers]
    else:
        named += entity.assignees
    return list({user.id: user for user in named if user is not None}.values())


def _linked(entity: Issue | MergeRequest) -> list[list[int]]:
    """User ids per people link table, in ``EntitySql.people`` order."""
    if isinstance(entity, MergeRequest):
        return [[u.id for u in entity.assignees], [u.id for u in entity.reviewers]]
    return [[u.id for u in entity.assignees]]
