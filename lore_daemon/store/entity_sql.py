"""Fixed SQL and row builders for issue/MR ingest (kept apart so ``entities.py`` reads as rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from lore_daemon.gitlab.models import Issue, MergeRequest, Milestone, UserBasic
from lore_daemon.store.upsert import Upsert
from lore_daemon.timeutil import iso_to_ms

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class UserRow(NamedTuple):
    """A ``users`` row; its field names are the columns, in statement order."""

    gitlab_id: int
    username: str
    name: str | None
    state: str | None
    web_url: str | None
    avatar_url: str | None


class MilestoneRow(NamedTuple):
    """A ``milestones`` row; its field names are the columns, in statement order."""

    gitlab_id: int
    project_id: int | None
    iid: int | None
    title: str
    state: str | None
    due_date: str | None
    web_url: str | None


class IssueRow(NamedTuple):
    """An ``issues`` row; its field names are the columns of ``ISSUE_SQL.upsert``, in order."""

    gitlab_id: int
    project_id: int
    iid: int
    title: str
    description: str | None
    state: str
    issue_type: str | None
    confidential: int
    author_id: int | None
    author_username: str | None
    milestone_id: int | None
    web_url: str
    created_at: int
    updated_at: int
    closed_at: int | None
    closed_by_id: int | None
    due_date: str | None
    user_notes_count: int
    upvotes: int
    downvotes: int
    last_seen_at: int
    raw_payload_id: int | None


class MrRow(NamedTuple):
    """A ``merge_requests`` row; its field names are the columns of ``MR_SQL.upsert``, in order."""

    gitlab_id: int
    project_id: int
    iid: int
    title: str
    description: str | None
    state: str
    draft: int
    author_id: int | None
    author_username: str | None
    milestone_id: int | None
    source_branch: str | None
    target_branch: str | None
    source_project_id: int | None
    target_project_id: int | None
    sha: str | None
    merge_commit_sha: str | None
    squash_commit_sha: str | None
    detailed_merge_status: str | None
    web_url: str
    created_at: int
    updated_at: int
    merged_at: int | None
    merged_by_id: int | None
    closed_at: int | None
    closed_by_id: int | None
    user_notes_count: int
    upvotes: int
    downvotes: int
    last_seen_at: int
    raw_payload_id: int | None


def _insert_head(table: str, row: type[tuple[Any, ...]]) -> str:
    """``INSERT INTO table (columns)`` from a row type's field names (code constants, checked)."""
    names: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
    for name in (table, *names):
        if not _NAME.match(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    return "INSERT INTO " + table + " (" + ", ".join(names) + ")"


def _values(row: type[tuple[Any, ...]]) -> str:
    return " VALUES (" + ", ".join("?" * len(row._fields)) + ")"  # type: ignore[attr-defined]


USER_HEAD: Final = _insert_head("users", UserRow)
USER_TAIL: Final = """
ON CONFLICT (gitlab_id) DO UPDATE SET
    username = excluded.username, name = coalesce(excluded.name, name),
    state = coalesce(excluded.state, state), web_url = coalesce(excluded.web_url, web_url),
    avatar_url = coalesce(excluded.avatar_url, avatar_url)
WHERE (username, name, state, web_url, avatar_url) IS NOT
      (excluded.username, coalesce(excluded.name, name), coalesce(excluded.state, state),
       coalesce(excluded.web_url, web_url), coalesce(excluded.avatar_url, avatar_url))
"""
UPSERT_USER: Final = USER_HEAD + _values(UserRow) + USER_TAIL

MILESTONE_HEAD: Final = _insert_head("milestones", MilestoneRow)
MILESTONE_TAIL: Final = """
ON CONFLICT (gitlab_id) DO UPDATE SET
    project_id = coalesce(excluded.project_id, project_id), iid = coalesce(excluded.iid, iid),
    title = excluded.title, state = excluded.state, due_date = excluded.due_date,
    web_url = coalesce(excluded.web_url, web_url)
WHERE (project_id, iid, title, state, due_date, web_url) IS NOT
      (coalesce(excluded.project_id, project_id), coalesce(excluded.iid, iid), excluded.title,
       excluded.state, excluded.due_date, coalesce(excluded.web_url, web_url))
"""
UPSERT_MILESTONE: Final = MILESTONE_HEAD + _values(MilestoneRow) + MILESTONE_TAIL

RAW_HEAD: Final = "INSERT INTO raw_payloads (sha256, payload, created_at)"
RAW_TAIL: Final = "ON CONFLICT (sha256) DO NOTHING RETURNING id, sha256"
INSERT_RAW: Final = RAW_HEAD + " VALUES (?, ?, ?) " + RAW_TAIL



@dataclass(frozen=True, slots=True)
class LinkTable:
    """An entity's link table (labels, assignees, reviewers), replaced whole on every write.

    The statements are derived from the names, which are code constants checked against a strict
    pattern; values only ever travel as ``?`` parameters.
    """

    table: str
    owner: str  # the entity's id column
    value: str
    delete: str = field(init=False)  # every link of one entity
    delete_many: str = field(init=False)  # every link of the entities in a JSON array
    insert_head: str = field(init=False)  # for multi-row VALUES
    insert: str = field(init=False)  # one link

    def __post_init__(self) -> None:
        for name in (self.table, self.owner, self.value):
            if not _NAME.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        head = f"INSERT OR IGNORE INTO {self.table} ({self.owner}, {self.value})"
        # The names were just checked against _NAME: plain identifiers written in this module.
        delete = f"DELETE FROM {self.table} WHERE {self.owner}"  # noqa: S608
        object.__setattr__(self, "delete", delete + " = ?")
        object.__setattr__(self, "delete_many", delete + " IN (SELECT value FROM json_each(?))")  # noqa: S608
        object.__setattr__(self, "insert_head", head)
        object.__setattr__(self, "insert", f"{head} VALUES (?, ?)")


@dataclass(frozen=True, slots=True)
class LocalStateSql:
    """What the store knows of an entity table's rows: the one column list, two lookups.

    Columns, in the order ``entities.local_from_row`` reads them: gitlab_id, updated_at,
    last_seen_at, the payload's sha256, raw_payload_id, title, web_url, iid, then
    ``<dependent>_synced_for_updated_at`` for each of ``dependents``. ``by_ids`` takes a JSON array
    of GitLab ids; ``by_iids`` a project id and a JSON array of iids, and leaves sha256 NULL (the
    dependents claim never needs it, and each ~4 KB payload row is a page read of its own).
    """

    table: str
    dependents: tuple[str, ...]  # the entity's dependent kinds, each with its watermark column
    by_ids: str = field(init=False)
    by_iids: str = field(init=False)

    def __post_init__(self) -> None:
        for name in (self.table, *self.dependents):
            if not _NAME.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        marks = ", ".join(f"e.{name}_synced_for_updated_at" for name in self.dependents)
        head = "SELECT e.gitlab_id, e.updated_at, e.last_seen_at, {sha}, e.raw_payload_id, e.title, e.web_url"
        head += f", e.iid, {marks} FROM {self.table} AS e"
        # The names were just checked against _NAME: plain identifiers written in this module.
        by_ids = head.format(sha="r.sha256") + " LEFT JOIN raw_payloads AS r ON r.id = e.raw_payload_id"
        by_ids += " WHERE e.gitlab_id IN (SELECT value FROM json_each(?))"
        by_iids = head.format(sha="NULL")
        by_iids += " WHERE e.project_id = ? AND e.iid IN (SELECT value FROM json_each(?))"
        object.__setattr__(self, "by_ids", by_ids)
        object.__setattr__(self, "by_iids", by_iids)


@dataclass(frozen=True, slots=True)
class EntitySql:
    """The statements of one entity table. Table names are code constants, never input."""

    local: LocalStateSql
    select_by_iid: str
    select_by_iids: str  # iid, gitlab_id of a project's rows holding the iids in a JSON array
    delete: str
    upsert: Upsert
    labels: LinkTable
    people: tuple[LinkTable, ...]  # one per user link table


ISSUE_SQL: Final = EntitySql(
    local=LocalStateSql("issues", ("discussions", "events")),
    select_by_iid="SELECT gitlab_id FROM issues WHERE project_id = ? AND iid = ?",
    select_by_iids="SELECT iid, gitlab_id FROM issues"
    " WHERE project_id = ? AND iid IN (SELECT value FROM json_each(?))",
    delete="DELETE FROM issues WHERE gitlab_id = ? RETURNING raw_payload_id",
    upsert=Upsert("issues", IssueRow._fields, key=("gitlab_id",)),
    labels=LinkTable("issue_labels", "issue_id", "label"),
    people=(LinkTable("issue_assignees", "issue_id", "user_id"),),
)

MR_SQL: Final = EntitySql(
    local=LocalStateSql("merge_requests", ("discussions", "events", "closes_issues", "diffs")),
    select_by_iid="SELECT gitlab_id FROM merge_requests WHERE project_id = ? AND iid = ?",
    select_by_iids="SELECT iid, gitlab_id FROM merge_requests"
    " WHERE project_id = ? AND iid IN (SELECT value FROM json_each(?))",
    delete="DELETE FROM merge_requests WHERE gitlab_id = ? RETURNING raw_payload_id",
    upsert=Upsert("merge_requests", MrRow._fields, key=("gitlab_id",)),
    labels=LinkTable("mr_labels", "merge_request_id", "label"),
    people=(
        LinkTable("mr_assignees", "merge_request_id", "user_id"),
        LinkTable("mr_reviewers", "merge_request_id", "user_id"),
    ),
)


def _ms(value: str | None) -> int | None:
    return iso_to_ms(value) if value else None


def user_row(user: UserBasic) -> UserRow:
    u = user
    return UserRow(
        gitlab_id=u.id, username=u.username, name=u.name, state=u.state, web_url=u.web_url,
        avatar_url=u.avatar_url,
    )


def milestone_row(milestone: Milestone) -> MilestoneRow:
    m = milestone
    return MilestoneRow(
        gitlab_id=m.id, project_id=m.project_id, iid=m.iid, title=m.title, state=m.state,
        due_date=m.due_date, web_url=m.web_url,
    )


def issue_row(issue: Issue, project_id: int, payload_id: int | None, now_ms: int) -> IssueRow:
    i = issue
    return IssueRow(
        gitlab_id=i.id, project_id=project_id, iid=i.iid, title=i.title, description=i.description,
        state=i.state, issue_type=i.issue_type or (i.type.lower() if i.type else None),
        confidential=int(bool(i.confidential)),
        author_id=i.author.id if i.author else None,
        author_username=i.author.username if i.author else None,
        milestone_id=i.milestone.id if i.milestone else None, web_url=i.web_url,
        created_at=iso_to_ms(i.created_at), updated_at=iso_to_ms(i.updated_at),
        closed_at=_ms(i.closed_at), closed_by_id=i.closed_by.id if i.closed_by else None,
        due_date=i.due_date, user_notes_count=i.user_notes_count or 0, upvotes=i.upvotes or 0,
        downvotes=i.downvotes or 0, last_seen_at=now_ms, raw_payload_id=payload_id,
    )


def mr_row(mr: MergeRequest, project_id: int, payload_id: int | None, now_ms: int) -> MrRow:
    m = mr
    return MrRow(
        gitlab_id=m.id, project_id=project_id, iid=m.iid, title=m.title, description=m.description,
        state=m.state, draft=int(bool(m.draft) or bool(m.work_in_progress)),
        author_id=m.author.id if m.author else None,
        author_username=m.author.username if m.author else None,
        milestone_id=m.milestone.id if m.milestone else None,
        source_branch=m.source_branch, target_branch=m.target_branch,
        source_project_id=m.source_project_id, target_project_id=m.target_project_id, sha=m.sha,
        merge_commit_sha=m.merge_commit_sha, squash_commit_sha=m.squash_commit_sha,
        detailed_merge_status=m.detailed_merge_status, web_url=m.web_url,
        created_at=iso_to_ms(m.created_at), updated_at=iso_to_ms(m.updated_at),
        merged_at=_ms(m.merged_at), merged_by_id=m.merged_by.id if m.merged_by else None,
        closed_at=_ms(m.closed_at), closed_by_id=m.closed_by.id if m.closed_by else None,
        user_notes_count=m.user_notes_count or 0, upvotes=m.upvotes or 0,
        downvotes=m.downvotes or 0, last_seen_at=now_ms, raw_payload_id=payload_id,
    )
