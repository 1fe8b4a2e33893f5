"""GitLab REST v4 payloads as msgspec Structs.

Unknown fields are ignored (GitLab adds fields over time) and every field GitLab may send as
``null`` is optional. Timestamps stay ISO strings here; the store converts them to milliseconds.
Only what the mirror stores or renders is declared: undeclared fields are skipped by the decoder,
which is what makes typed decoding fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec


class _Model(msgspec.Struct, kw_only=True):
    pass


class UserBasic(_Model, kw_only=True):
    id: int
    username: str
    name: str | None = None
    state: str | None = None
    avatar_url: str | None = None
    web_url: str | None = None


class CurrentUser(UserBasic, kw_only=True):
    """``GET /user``: the token's owner."""

    is_admin: bool | None = None


class Version(_Model, kw_only=True):
    version: str
    revision: str | None = None


class Namespace(_Model, kw_only=True):
    id: int
    full_path: str | None = None
    kind: str | None = None


class Project(_Model, kw_only=True):
    id: int
    path_with_namespace: str
    name: str | None = None
    web_url: str
    default_branch: str | None = None
    namespace: Namespace | None = None


class Milestone(_Model, kw_only=True):
    id: int
    iid: int | None = None
    project_id: int | None = None
    title: str
    state: str | None = None
    due_date: str | None = None
    web_url: str | None = None


class Issue(_Model, kw_only=True):
    id: int
    iid: int
    project_id: int
    title: str
    description: str | None = None
    state: str
    created_at: str
    updated_at: str
    closed_at: str | None = None
    closed_by: UserBasic | None = None
    labels: list[str] = []
    milestone: Milestone | None = None
    assignees: list[UserBasic] = []
    author: UserBasic | None = None
    issue_type: str | None = None
    type: str | None = None
    confidential: bool | None = False
    due_date: str | None = None
    user_notes_count: int | None = 0
    upvotes: int | None = 0
    downvotes: int | None = 0
    web_url: str


class MergeRequest(_Model, kw_only=True):
    id: int
    iid: int
    project_id: int
    title: str
    description: str | None = None
    state: str
    created_at: str
    updated_at: str
    merged_at: str | None = None
    merged_by: UserBasic | None = None
    closed_at: str | None = None
    closed_by: UserBasic | None = None
    labels: list[str] = []
    milestone: Milestone | None = None
    assignees: list[UserBasic] = []
    reviewers: list[UserBasic] = []
    author: UserBasic | None = None
    source_branch: str | None = None
    target_branch: str | None = None
    source_project_id: int | None = None
    target_project_id: int | None = None
    draft: bool | None = False
    work_in_progress: bool | None = None
    sha: str | None = None
    merge_commit_sha: str | None = None
    squash_commit_sha: str | None = None
    detailed_merge_status: str | None = None
    user_notes_count: int | None = 0
    upvotes: int | None = 0
    downvotes: int | None = 0
    web_url: str


class LineRangePoint(_Model, kw_only=True):
    line_code: str | None = None
    type: str | None = None
    old_line: int | None = None
    new_line: int | None = None


class LineRange(_Model, kw_only=True):
    start: LineRangePoint | None = None
    end: LineRangePoint | None = None


class NotePosition(_Model, kw_only=True):
    """A DiffNote's place in the diff. Kept whole (as JSON) besides the queryable columns."""

    base_sha: str | None = None
    start_sha: str | None = None
    head_sha: str | None = None
    old_path: str | None = None
    new_path: str | None = None
    position_type: str | None = None
    old_line: int | None = None
    new_line: int | None = None
    line_range: LineRange | None = None
    width: int | None = None
    height: int | None = None
    x: int | None = None
    y: int | None = None


class Note(_Model, kw_only=True):
    id: int
    type: str | None = None
    body: str = ""
    author: UserBasic | None = None
    created_at: str
    updated_at: str | None = None
    system: bool = False
    noteable_id: int | None = None
    noteable_type: str | None = None
    noteable_iid: int | None = None
    resolvable: bool | None = False
    resolved: bool | None = False
    position: NotePosition | None = None


class Discussion(_Model, kw_only=True):
    id: str
    individual_note: bool = False
    notes: list[Note] = []


class EventLabel(_Model, kw_only=True):
    id: int | None = None
    name: str | None = None
    color: str | None = None
    description: str | None = None


class _ResourceEvent(_Model, kw_only=True):
    id: int
    user: UserBasic | None = None
    created_at: str
    resource_type: str | None = None
    resource_id: int | None = None


class StateEvent(_ResourceEvent, kw_only=True):
    state: str
    source_commit: str | None = None
    source_merge_request_id: int | None = None


class LabelEvent(_ResourceEvent, kw_only=True):
    label: EventLabel | None = None
    action: str


class MilestoneEvent(_ResourceEvent, kw_only=True):
    milestone: Milestone | None = None
    action: str


class ClosesIssue(_Model, kw_only=True):
    """An issue of this GitLab in ``closes_issues`` (``Entities::IssueBasic``)."""

    id: int
    iid: int | None = None
    project_id: int | None = None
    title: str | None = None
    state: str | None = None
    web_url: str | None = None


class ExternalIssue(_Model, kw_only=True):
    """An ``closes_issues`` item from an external tracker (``Entities::ExternalIssue``): a string id
    such as ``"PROJ-123"`` (digits only for numeric trackers), a title, no iid."""

    id: str
    title: str | None = None


@dataclass(frozen=True, slots=True)
class ClosesIssues:
    """``closes_issues`` decoded item by item: this GitLab's issues and external tracker issues."""

    internal: list[ClosesIssue]
    external: list[ExternalIssue]


class MrDiff(_Model, kw_only=True):
    old_path: str
    new_path: str
    a_mode: str | None = None
    b_mode: str | None = None
    new_file: bool = False
    renamed_file: bool = False
    deleted_file: bool = False
    diff: str | None = None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    """A decoded payload together with its exact original JSON bytes (for ``raw_payloads``)."""

    item: T
    raw: bytes


def decode_json(data: bytes) -> Any:
    """Untyped decode, for bodies the client only inspects (error messages)."""
    return msgspec.json.decode(data)
