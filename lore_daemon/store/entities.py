"""Issue and MR ingest: the one place that decides whether a fetched payload is written.

The rules are :func:`decide` (and :func:`superseded_payload`, :func:`renames_parents`); both
writers apply them: ``ingest_issue`` / ``ingest_merge_request`` here, item by item, and
``store/ingest_group.py``, a listing page at once. Applied inside the caller's write transaction
(``BEGIN IMMEDIATE``):

1. **Never regress** (docs/surgical-sync.md, invariant 6): a local row whose ``updated_at`` is
   newer than the payload's wins; with ``stale_guard_ms`` (surgical: when its preflight started),
   an equal ``updated_at`` whose local ``last_seen_at`` is later than the guard also wins —
   someone wrote a fresher fetch since.
   Such payloads are ``skipped_stale`` and write nothing.
2. **Unchanged is free**: the same raw bytes (sha256) as the stored payload means no write at all,
   except enqueueing dependents whose watermark is behind.
3. Otherwise everything is written: raw payload (deduplicated by sha256; the superseded one is
   dropped), users, milestone, the row, its label/assignee/reviewer links, the dirty mark, and the
   dependent jobs whose watermark is behind the payload's ``updated_at``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import apsw

from lore_daemon.gitlab.models import Fetched, Issue, MergeRequest, Project, UserBasic
from lore_daemon.store.dependents import delete_entity_dependents
from lore_daemon.store.dirty import mark_dirty
from lore_daemon.store.entity_sql import (
    INSERT_RAW,
    ISSUE_SQL,
    MR_SQL,
    UPSERT_MILESTONE,
    UPSERT_USER,
    EntitySql,
    LinkTable,
    issue_row,
    milestone_row,
    mr_row,
    user_row,
)
from lore_daemon.store.keys import EntityKind, SourceKey, discussion_key, entity_key, entity_type_of
from lore_daemon.store.queue import ISSUE_JOB_TYPES, JOB_DEPENDENT, MR_JOB_TYPES, enqueue_job
from lore_daemon.store.upsert import Upsert
from lore_daemon.timeutil import iso_to_ms

IngestStatus = Literal["ingested", "unchanged", "skipped_stale"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    kind: EntityKind
    iid: int
    gitlab_id: int
    key: SourceKey
    status: IngestStatus
    updated_at_ms: int
    touched: frozenset[SourceKey]  # keys marked dirty by this call (empty unless ingested)


@dataclass(frozen=True, slots=True)
class LocalEntityState:
    """What the store knows of an entity: for dry runs and surgical outcome reporting."""

    kind: EntityKind
    iid: int
    gitlab_id: int
    title: str
    web_url: str
    updated_at_ms: int
    last_seen_at_ms: int
    raw_sha256: str | None
    raw_payload_id: int | None
    watermarks: dict[str, int | None] = field(default_factory=dict)

    def dependents_behind(self) -> list[str]:
        """Dependents (``discussions``, ``events``, ...) not yet synced for this version."""
        return [name for name, mark in self.watermarks.items() if mark is None or mark < self.updated_at_ms]


_UPSERT_PROJECT = Upsert(
    "projects",
    ("gitlab_id", "path_with_namespace", "name", "web_url", "default_branch", "last_seen_at"),
    key=("gitlab_id",),
).sql


def upsert_project(conn: apsw.Connection, project: Project, *, now_ms: int) -> None:
    """Record a resolved project. If another (older) project row still holds this path — the path
    moved to a new project — that row's path is suffixed with its id so the UNIQUE path holds."""
    conn.execute(
        "UPDATE projects SET path_with_namespace = path_with_namespace || '#' || gitlab_id"
        " WHERE path_with_namespace = ? AND gitlab_id <> ?",
        (project.path_with_namespace, project.id),
    )
    conn.execute(
        _UPSERT_PROJECT,
        (project.id, project.path_with_namespace, project.name, project.web_url,
         project.default_branch, now_ms),
    )


def local_entity_state(
    conn: apsw.Connection, project_id: int, kind: EntityKind, iid: int
) -> LocalEntityState | None:
    sql = ISSUE_SQL if entity_type_of(kind) == "issue" else MR_SQL
    found = conn.execute(sql.select_by_iid, (project_id, iid)).fetchone()
    return None if found is None else _load_local(conn, kind, sql, int(found[0]))


def local_states_by_iid(
    conn: apsw.Connection, project_id: int, kind: EntityKind, iids: Sequence[int]
) -> dict[int, LocalEntityState]:
    """``local_entity_state`` for many iids of one project in one query, by iid (absent: no row),
    without ``raw_sha256`` (always None here; reading it costs a payload page per row)."""
    sql = ISSUE_SQL if entity_type_of(kind) == "issue" else MR_SQL
    rows = conn.execute(sql.local.by_iids, (project_id, json.dumps(list(iids))))
    return {state.iid: state for state in (local_from_row(kind, row) for row in rows)}


def _load_local(
    conn: apsw.Connection, kind: EntityKind, sql: EntitySql, gitlab_id: int
) -> LocalEntityState | None:
    row = conn.execute(sql.local.by_ids, (f"[{gitlab_id:d}]",)).fetchone()
    return None if row is None else local_from_row(kind, row)


def local_from_row(kind: EntityKind, row: Sequence[Any]) -> LocalEntityState:
    """A ``LocalEntityState`` from a row of ``LocalStateSql`` (its columns, in order)."""
    gitlab_id, updated, seen, sha, payload_id, title, web_url, iid = row[:8]
    names = (ISSUE_SQL if kind == "issue" else MR_SQL).local.dependents
    return LocalEntityState(
        kind=kind, iid=int(iid), gitlab_id=int(gitlab_id), title=str(title), web_url=str(web_url),
        updated_at_ms=int(updated), last_seen_at_ms=int(seen), raw_sha256=sha, raw_payload_id=payload_id,
        watermarks={name: row[8 + i] for i, name in enumerate(names)},
    )


def ingest_issue(
    conn: apsw.Connection,
    project_id: int,
    fetched: Fetched[Issue],
    *,
    now_ms: int,
    stale_guard_ms: int | None = None,
    enqueue_dependents: bool = True,
) -> IngestOutcome:
    issue = fetched.item
    return _ingest(
        conn, "issue", ISSUE_SQL, project_id, issue, fetched.raw,
        now_ms=now_ms, stale_guard_ms=stale_guard_ms, enqueue_dependents=enqueue_dependents,
        write=lambda payload_id: _write_issue(conn, project_id, issue, payload_id, now_ms),
    )


def ingest_merge_request(
    conn: apsw.Connection,
    project_id: int,
    fetched: Fetched[MergeRequest],
    *,
    now_ms: int,
    stale_guard_ms: int | None = None,
    enqueue_dependents: bool = True,
) -> IngestOutcome:
    mr = fetched.item
    return _ingest(
        conn, "mr", MR_SQL, project_id, mr, fetched.raw,
        now_ms=now_ms, stale_guard_ms=stale_guard_ms, enqueue_dependents=enqueue_dependents,
        write=lambda payload_id: _write_mr(conn, project_id, mr, payload_id, now_ms),
    )


def is_stale(local: LocalEntityState, updated_at_ms: int, stale_guard_ms: int | None) -> bool:
    """Rule 1: the local row is newer, or as new and re-fetched after the guard."""
    if local.updated_at_ms > updated_at_ms:
        return True
    return (
        stale_guard_ms is not None
        and local.updated_at_ms == updated_at_ms
        and local.last_seen_at_ms > stale_guard_ms
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What ingesting one fetched payload does: its status and the dependent jobs to enqueue."""

    status: IngestStatus  # skipped_stale: nothing at all; unchanged: jobs only; ingested: write
    jobs: tuple[str, ...]  # dependent job types whose watermark is behind the payload


def decide(
    kind: EntityKind, local: LocalEntityState | None, updated_at_ms: int, sha: str,
    stale_guard_ms: int | None,
) -> Decision:
    """The ingest rules for one payload (its ``updated_at`` and raw bytes' sha256) against what
    the store holds (``local``, read with the payload's sha256 joined in)."""
    if local is not None and is_stale(local, updated_at_ms, stale_guard_ms):
        return Decision("skipped_stale", ())
    jobs = tuple(job_types_behind(kind, local.watermarks if local is not None else {}, updated_at_ms))
    if local is not None and local.raw_sha256 == sha:
        return Decision("unchanged", jobs)
    return Decision("ingested", jobs)


def superseded_payload(local: LocalEntityState | None, payload_id: int) -> int | None:
    """The raw payload an ingested write replaced (to drop), if any."""
    if local is None or local.raw_payload_id in (None, payload_id):
        return None
    return local.raw_payload_id


def renames_parents(local: LocalEntityState | None, item: Issue | MergeRequest) -> bool:
    """Whether an ingested write changes what the entity's discussions' documents embed (its
    title or URL): then those documents are dirtied too."""
    return local is not None and (local.title, local.web_url) != (item.title, item.web_url)


def _ingest(
    conn: apsw.Connection,
    kind: EntityKind,
    sql: EntitySql,
    project_id: int,
    item: Issue | MergeRequest,
    raw: bytes,
    *,
    now_ms: int,
    stale_guard_ms: int | None,
    enqueue_dependents: bool,
    write: Callable[[int], None],
) -> IngestOutcome:
    gitlab_id, iid, updated_at_ms = item.id, item.iid, iso_to_ms(item.updated_at)
    key = entity_key(kind, gitlab_id)

    def outcome(status: IngestStatus, touched: frozenset[SourceKey] = frozenset()) -> IngestOutcome:
        return IngestOutcome(kind, iid, gitlab_id, key, status, updated_at_ms, touched)

    local = _load_local(conn, kind, sql, gitlab_id)
    sha = hashlib.sha256(raw).hexdigest()
    decision = decide(kind, local, updated_at_ms, sha, stale_guard_ms)
    if decision.status == "skipped_stale":
        return outcome("skipped_stale")
    if enqueue_dependents:
        entity_type = entity_type_of(kind)
        for job_type in decision.jobs:
            enqueue_job(
                conn, project_id=project_id, entity_type=entity_type, entity_iid=iid, entity_id=gitlab_id,
                job_type=job_type, target_updated_at=updated_at_ms, now_ms=now_ms,
            )
    if decision.status == "unchanged":
        return outcome("unchanged")

    touched: set[SourceKey] = {key}
    if local is None:
        touched |= _evict_iid_holder(conn, kind, sql, project_id, iid, now_ms)
    payload_id = _store_raw(conn, sha, raw, now_ms)
    write(payload_id)
    superseded = superseded_payload(local, payload_id)
    if superseded is not None:
        drop_raw(conn, superseded)
    if renames_parents(local, item):
        touched |= _parent_discussion_keys(conn, kind, gitlab_id)
    mark_dirty(conn, touched, now_ms=now_ms)
    return outcome("ingested", frozenset(touched))


def job_types_behind(kind: EntityKind, watermarks: dict[str, int | None], updated_at_ms: int) -> list[str]:
    """The dependent job types whose watermark has not reached ``updated_at_ms``."""
    return [
        job_type
        for job_type in (ISSUE_JOB_TYPES if kind == "issue" else MR_JOB_TYPES)
        if (mark := watermarks.get(JOB_DEPENDENT[job_type])) is None or mark < updated_at_ms
    ]


def _store_raw(conn: apsw.Connection, sha: str, raw: bytes, now_ms: int) -> int:
    row = conn.execute(INSERT_RAW, (sha, raw.decode("utf-8", errors="replace"), now_ms)).fetchone()
    if row is None:
        row = conn.execute("SELECT id FROM raw_payloads WHERE sha256 = ?", (sha,)).fetchone()
    assert row is not None  # inserted, or present: the conflict that skipped the insert proves it
    return int(row[0])


def drop_raw(conn: apsw.Connection, payload_id: int | None) -> None:
    """Delete a superseded payload. Bytes embed the entity's id, so no other row shares it; if one
    ever does, the foreign key refuses the delete and the payload simply stays."""
    try:
        with conn:  # savepoint: a refused delete must not poison the caller's transaction
            conn.execute("DELETE FROM raw_payloads WHERE id = ?", (payload_id,))
    except apsw.ConstraintError:
        pass


def _evict_iid_holder(
    conn: apsw.Connection, kind: EntityKind, sql: EntitySql, project_id: int, iid: int, now_ms: int
) -> set[SourceKey]:
    """A different GitLab id holding this (project, iid) was deleted and recreated upstream: drop
    the old row and everything hanging off it, and dirty its keys so their documents go too."""
    found = conn.execute(sql.select_by_iid, (project_id, iid)).fetchone()
    if found is None:
        return set()
    old_id = int(found[0])
    keys = set(delete_entity_dependents(conn, parent_kind=kind, parent_id=old_id, now_ms=now_ms))
    deleted = conn.execute(sql.delete, (old_id,)).fetchone()
    if deleted is not None and deleted[0] is not None:
        drop_raw(conn, int(deleted[0]))
    keys.add(entity_key(kind, old_id))
    return keys


def _parent_discussion_keys(conn: apsw.Connection, kind: EntityKind, gitlab_id: int) -> set[SourceKey]:
    rows = conn.execute(
        "SELECT id FROM discussions WHERE noteable_type = ? AND noteable_id = ?",
        (entity_type_of(kind), gitlab_id),
    )
    return {discussion_key(int(row[0])) for row in rows}


def _upsert_people(conn: apsw.Connection, users: Sequence[UserBasic | None]) -> None:
    unique = {user.id: user for user in users if user is not None}
    if unique:
        conn.executemany(UPSERT_USER, [user_row(user) for user in unique.values()])


def _replace_links(conn: apsw.Connection, links: LinkTable, owner_id: int, values: list[object]) -> None:
    conn.execute(links.delete, (owner_id,))
    if values:
        conn.executemany(links.insert, [(owner_id, value) for value in values])


def _write_issue(conn: apsw.Connection, project_id: int, issue: Issue, payload_id: int, now_ms: int) -> None:
    _upsert_people(conn, [issue.author, issue.closed_by, *issue.assignees])
    if issue.milestone is not None:
        conn.execute(UPSERT_MILESTONE, milestone_row(issue.milestone))
    conn.execute(ISSUE_SQL.upsert.sql, issue_row(issue, project_id, payload_id, now_ms))
    _replace_links(conn, ISSUE_SQL.labels, issue.id, list(issue.labels))
    _replace_links(conn, ISSUE_SQL.people[0], issue.id, [u.id for u in issue.assignees])


def _write_mr(conn: apsw.Connection, project_id: int, mr: MergeRequest, payload_id: int, now_ms: int) -> None:
    _upsert_people(conn, [mr.author, mr.closed_by, mr.merged_by, *mr.assignees, *mr.reviewers])
    if mr.milestone is not None:
        conn.execute(UPSERT_MILESTONE, milestone_row(mr.milestone))
    conn.execute(MR_SQL.upsert.sql, mr_row(mr, project_id, payload_id, now_ms))
    _replace_links(conn, MR_SQL.labels, mr.id, list(mr.labels))
    _replace_links(conn, MR_SQL.people[0], mr.id, [u.id for u in mr.assignees])
    _replace_links(conn, MR_SQL.people[1], mr.id, [u.id for u in mr.reviewers])
