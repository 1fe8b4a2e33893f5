"""Fixed SQL and row builders for issue/MR ingest (kept apart so ``entities.py`` reads as rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from lore_daemon.gitlab.models import Issue, MergeRequest, Milestone, UserBasic
from lore_daemon.store.upsert import Upsert
from lore_daemon.timeutil import iso_to_ms

USER_HEAD: Final = "INSERT INTO users (gitlab_id, username, name, state, web_url, avatar_url)"
USER_TAIL: Final = """
ON CONFLICT (gitlab_id) DO UPDATE SET
    username = excluded.username, name = coalesce(excluded.name, name),
    state = coalesce(excluded.state, state), web_url = coalesce(excluded.web_url, web_url),
    avatar_url = coalesce(excluded.avatar_url, avatar_url)
WHERE (username, name, state, web_url, avatar_url) IS NOT
      (excluded.username, coalesce(excluded.name, name), coalesce(excluded.state, state),
       coalesce(excluded.web_url, web_url), coalesce(excluded.avatar_url, avatar_url))
"""
UPSERT_USER: Final = USER_HEAD + " VALUES (?, ?, ?, ?, ?, ?)" + USER_TAIL

MILESTONE_HEAD: Final = "INSERT INTO milestones (gitlab_id, project_id, iid, title, state, due_date, web_url)"
MILESTONE_TAIL: Final = """
ON CONFLICT (gitlab_id) DO UPDATE SET
    project_id = coalesce(excluded.project_id, project_id), iid = coalesce(excluded.iid, iid),
    title = excluded.title, state = excluded.state, due_date = excluded.due_date,
    web_url = coalesce(excluded.web_url, web_url)
WHERE (project_id, iid, title, state, due_date, web_url) IS NOT
      (coalesce(excluded.project_id, project_id), coalesce(excluded.iid, iid), excluded.title,
       excluded.state, excluded.due_date, coalesce(excluded.web_url, web_url))
"""
UPSERT_MILESTONE: Final = MILESTONE_HEAD + " VALUES (?, ?, ?, ?, ?, ?, ?)" + MILESTONE_TAIL

RAW_HEAD: Final = "INSERT INTO raw_payloads (sha256, payload, created_at)"
RAW_TAIL: Final = "ON CONFLICT (sha256) DO NOTHING RETURNING id, sha256"
INSERT_RAW: Final = RAW_HEAD + " VALUES (?, ?, ?) " + RAW_TAIL


_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


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
    upsert=Upsert(
        "issues",
        ("gitlab_id", "project_id", "iid", "title", "description", "state", "issue_type",
         "confidential", "author_id", "author_username", "milestone_id", "web_url", "created_at",
         "updated_at", "closed_at", "closed_by_id", "due_date", "user_notes_count", "upvotes",
         "downvotes", "last_seen_at", "raw_payload_id"),
        key=("gitlab_id",),
    ),
    labels=LinkTable("issue_labels", "issue_id", "label"),
    people=(LinkTable("issue_assignees", "issue_id", "user_id"),),
)

MR_SQL: Final = EntitySql(
    local=LocalStateSql("merge_requests", ("discussions", "events", "closes_issues", "diffs")),
    select_by_iid="SELECT gitlab_id FROM merge_requests WHERE project_id = ? AND iid = ?",
    select_by_iids="SELECT iid, gitlab_id FROM merge_requests"
    " WHERE project_id = ? AND iid IN (SELECT value FROM json_each(?))",
    delete="DELETE FROM merge_requests WHERE gitlab_id = ? RETURNING raw_payload_id",
    upsert=Upsert(
        "merge_requests",
        ("gitlab_id", "project_id", "iid", "title", "description", "state", "draft", "author_id",
         "author_username", "milestone_id", "source_branch", "target_branch", "source_project_id",
         "target_project_id", "sha", "merge_commit_sha", "squash_commit_sha",
         "detailed_merge_status", "web_url", "created_at", "updated_at", "merged_at",
         "merged_by_id", "closed_at", "closed_by_id", "user_notes_count", "upvotes", "downvotes",
         "last_seen_at", "raw_payload_id"),
        key=("gitlab_id",),
    ),
    labels=LinkTable("mr_labels", "merge_request_id", "label"),
    people=(
        LinkTable("mr_assignees", "merge_request_id", "user_id"),
        LinkTable("mr_reviewers", "merge_request_id", "user_id"),
    ),
)


def _ms(value: str | None) -> int | None:
    return iso_to_ms(value) if value else None


def user_row(user: UserBasic) -> tuple[object, ...]:
    return (user.id, user.username, user.name, user.state, user.web_url, user.avatar_url)


def milestone_row(milestone: Milestone) -> tuple[object, ...]:
    m = milestone
    return (m.id, m.project_id, m.iid, m.title, m.state, m.due_date, m.web_url)


def issue_row(issue: Issue, project_id: int, payload_id: int, now_ms: int) -> tuple[object, ...]:
    i = issue
    issue_type = i.issue_type or (i.type.lower() if i.type else None)
    return (
        i.id, project_id, i.iid, i.title, i.description, i.state, issue_type, int(bool(i.confidential)),
        i.author.id if i.author else None, i.author.username if i.author else None,
        i.milestone.id if i.milestone else None, i.web_url, iso_to_ms(i.created_at),
        iso_to_ms(i.updated_at), _ms(i.closed_at), i.closed_by.id if i.closed_by else None, i.due_date,
        i.user_notes_count or 0, i.upvotes or 0, i.downvotes or 0, now_ms, payload_id,
    )


def mr_row(mr: MergeRequest, project_id: int, payload_id: int, now_ms: int) -> tuple[object, ...]:
    m = mr
    return (
        m.id, project_id, m.iid, m.title, m.description, m.state,
        int(bool(m.draft) or bool(m.work_in_progress)),
        m.author.id if m.author else None, m.author.username if m.author else None,
        m.milestone.id if m.milestone else None, m.source_branch, m.target_branch,
        m.source_project_id, m.target_project_id, m.sha, m.merge_commit_sha, m.squash_commit_sha,
        m.detailed_merge_status, m.web_url, iso_to_ms(m.created_at), iso_to_ms(m.updated_at),
        _ms(m.merged_at), m.merged_by.id if m.merged_by else None, _ms(m.closed_at),
        m.closed_by.id if m.closed_by else None, m.user_notes_count or 0, m.upvotes or 0,
        m.downvotes or 0, now_ms, payload_id,
    )
