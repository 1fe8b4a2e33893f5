"""Wire types of the read methods: ``lore/get``, ``lore/list`` and ``lore/search`` (SPEC §12).

The same rules as :mod:`lore_daemon.protocol` (camelCase on the wire, params forbid unknown
fields, results carry every field); kept in their own module so ``protocol.py`` stays small.
``schemagen`` publishes the Structs of both modules. Imports nothing heavy.

Conventions of the read results:

* a list field is ``null`` when it was not asked for (``include``) and ``[]`` when there is none;
* usernames are given without ``@``; timestamps are ISO-8601 with a UTC offset;
* search snippets mark each matched term as ``<mark>term</mark>`` (``SNIPPET_MARKERS``) and
  elide cut text with ``…``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from lore_daemon.protocol import EntityKind, Iid, SyncResult, Timestamp, _Params, _Wire

ReadInclude = Literal["discussions", "events", "links", "fileChanges"]
EntityState = Literal["opened", "closed", "merged", "locked", "all"]
ListSort = Literal["updated", "created"]
SortOrder = Literal["asc", "desc"]
SearchMode = Literal["lexical", "semantic", "hybrid"]
SourceType = Literal["issue", "merge_request", "discussion"]
ReadSource = Literal["mirror", "synced"]
EventType = Literal["state", "label", "milestone"]

DEFAULT_INCLUDE: tuple[ReadInclude, ...] = ("discussions", "links")
MAX_LIST_LIMIT = 200
MAX_SEARCH_LIMIT = 100
SNIPPET_MARKERS = ("<mark>", "</mark>")


# --------------------------------------------------------------------------------------------- params


class GetParams(_Params, kw_only=True):
    """One issue or MR: ``ref`` (``#12``, ``!3``, ``group/proj#12``, or a URL), ``url``, or
    ``kind`` + ``iid`` (with ``project``, optional when one project is configured).

    ``maxAgeMs``: when the local copy is missing or was last written from GitLab longer ago than
    this, a surgical sync of that one entity runs first (read-through); ``null`` never syncs.
    ``offline``: never touch the network, whatever ``maxAgeMs`` says.
    """

    ref: str | None = None
    url: str | None = None
    project: str | None = None
    kind: EntityKind | None = None
    iid: Iid | None = None
    include: list[ReadInclude] = msgspec.field(default_factory=lambda: list(DEFAULT_INCLUDE))
    max_age_ms: Annotated[int, msgspec.Meta(ge=0)] | None = None
    offline: bool = False


class ListFilters(_Params, kw_only=True):
    """Filters shared by ``lore/list`` and ``lore/search`` (all optional, combined with AND).

    ``project``: path or numeric id (default: every project in the mirror). ``labels``: the
    entity carries all of them. ``author`` / ``assignee``: usernames (``@`` optional, any case).
    ``milestone``: its title. ``updatedAfter``: GitLab's ``updated_at`` at or after this moment.
    ``state``: ``all`` (or null) means any.
    """

    project: str | None = None
    kind: EntityKind | None = None
    state: EntityState | None = None
    labels: list[str] = []
    author: str | None = None
    assignee: str | None = None
    milestone: str | None = None
    updated_after: Timestamp | None = None


class ListParams(ListFilters, kw_only=True):
    """``cursor``: the ``nextCursor`` of the previous page, sent with the same filters and sort."""

    sort: ListSort = "updated"
    order: SortOrder = "desc"
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIST_LIMIT)] = 50
    cursor: str | None = None


class SearchParams(ListFilters, kw_only=True):
    """``mode``: ``null`` runs hybrid when document vectors exist, else lexical; the result says
    which ran. ``sourceTypes``: which documents to search (default all)."""

    query: str
    mode: SearchMode | None = None
    source_types: list[SourceType] = []
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEARCH_LIMIT)] = 20


# ------------------------------------------------------------------------------------ lore/get result


class NotePosition(_Wire, kw_only=True):
    """A DiffNote's position as GitLab sent it."""

    position_type: str | None = None
    base_sha: str | None = None
    start_sha: str | None = None
    head_sha: str | None = None
    old_path: str | None = None
    new_path: str | None = None
    old_line: int | None = None
    new_line: int | None = None
    line_range: dict[str, Any] | None = None


class Note(_Wire, kw_only=True):
    id: int
    type: str | None  # null (a plain comment), "DiscussionNote" or "DiffNote"
    author: str | None
    body: str
    created_at: Timestamp
    updated_at: Timestamp
    system: bool
    resolvable: bool
    resolved: bool
    position: NotePosition | None = None


class Discussion(_Wire, kw_only=True):
    id: str  # GitLab's 40-hex discussion id
    individual_note: bool
    resolvable: bool  # any of its notes is
    resolved: bool  # every resolvable note is resolved (false when none is resolvable)
    created_at: Timestamp | None
    notes: list[Note]


class EntityEvent(_Wire, kw_only=True):
    """One resource event; ``type`` says which fields apply."""

    type: EventType
    id: int
    created_at: Timestamp
    user: str | None
    state: str | None = None  # state events
    source_commit: str | None = None
    source_merge_request_id: int | None = None
    action: str | None = None  # label and milestone events: add | remove
    label: str | None = None
    milestone: str | None = None


class LinkedEntity(_Wire, kw_only=True):
    """The other end of a "closes" link. ``inMirror`` is false when only the link is known;
    ``external`` marks an issue of an external tracker (``externalId``, no iid)."""

    kind: EntityKind
    iid: int | None
    project: str | None
    title: str | None = None
    state: str | None = None
    web_url: str | None = None
    in_mirror: bool = False
    external: bool = False
    external_id: str | None = None


class EntityLinks(_Wire, kw_only=True):
    closes: list[LinkedEntity] = []  # an MR: the issues it closes
    closed_by: list[LinkedEntity] = []  # an issue: the MRs that close it


class FileChange(_Wire, kw_only=True):
    old_path: str
    new_path: str
    new_file: bool
    renamed_file: bool
    deleted_file: bool


class LocalFreshness(_Wire, kw_only=True):
    """``lastSeenAt``: when this copy was last written from GitLab; ``source``: ``synced`` when
    this request refreshed it, else ``mirror``."""

    last_seen_at: Timestamp
    age_ms: int
    source: ReadSource


class EntityDetail(_Wire, kw_only=True):
    kind: EntityKind
    iid: int
    project: str
    title: str
    description: str | None
    state: str
    author: str | None
    assignees: list[str]
    reviewers: list[str]
    labels: list[str]
    milestone: str | None
    web_url: str
    created_at: Timestamp
    updated_at: Timestamp
    closed_at: Timestamp | None
    merged_at: Timestamp | None
    source_branch: str | None
    target_branch: str | None
    draft: bool | None
    detailed_merge_status: str | None
    confidential: bool | None
    issue_type: str | None
    user_notes_count: int
    discussions: list[Discussion] | None
    events: list[EntityEvent] | None
    links: EntityLinks | None
    file_changes: list[FileChange] | None
    local: LocalFreshness
    sync: SyncResult | None = None
    warnings: list[str] = []


# ------------------------------------------------------------------------------- list/search results


class EntitySummary(_Wire, kw_only=True):
    kind: EntityKind
    iid: int
    project: str
    title: str
    state: str
    labels: list[str]
    author: str | None
    created_at: Timestamp
    updated_at: Timestamp
    web_url: str
    notes_count: int  # GitLab's user_notes_count (system notes excluded)


class ListResult(_Wire, kw_only=True):
    """``nextCursor`` is set whenever more items match: a page is never silently cut short."""

    items: list[EntitySummary]
    next_cursor: str | None


class SearchRanks(_Wire, kw_only=True):
    """1-based rank of the hit in each candidate list it was in (``null``: not in that list)."""

    lexical: int | None = None
    semantic: int | None = None


class SearchHit(_Wire, kw_only=True):
    """One matching document and its parent entity. ``exactReference``: the query named this
    entity (``#12``, ``!3``, ``group/proj#12``, a URL), which ranks it first."""

    source_type: SourceType
    source_id: int
    document_id: int | None
    kind: EntityKind
    iid: int
    project: str
    title: str
    state: str
    snippet: str
    score: float
    ranks: SearchRanks
    web_url: str | None
    updated_at: Timestamp
    exact_reference: bool = False


class SearchResult(_Wire, kw_only=True):
    """``mode``: the mode that ran. ``hasMore``: more documents matched than ``limit``."""

    mode: SearchMode
    hits: list[SearchHit]
    has_more: bool
    warnings: list[str] = []
