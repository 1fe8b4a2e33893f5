"""The entity filters of ``lore/list`` and ``lore/search`` as SQL conditions (values always bound).

One :class:`EntityFilter` holds the filters in store terms (project ids resolved, usernames
cleaned, timestamps in ms); :func:`conditions` turns it into the ``WHERE`` terms of one entity
table aliased ``e``. List pages and search candidates use the same terms, so a filter means the
same thing in both methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from lore_daemon.protocol import EntityKind
from lore_daemon.protocol_read import ListFilters
from lore_daemon.store.read_common import clean_username, project_ids
from lore_daemon.timeutil import iso_to_ms

# Per entity table: (table, labels table, assignees table, owner column of both link tables).
_TABLES: dict[str, tuple[str, str, str, str]] = {
    "issue": ("issues", "issue_labels", "issue_assignees", "issue_id"),
    "mr": ("merge_requests", "mr_labels", "mr_assignees", "merge_request_id"),
}
KINDS: tuple[EntityKind, ...] = ("issue", "mr")


@dataclass(frozen=True, slots=True)
class EntityFilter:
    """``project_ids``: None = any project; () = the named project is not in the mirror."""

    project_ids: tuple[int, ...] | None = None
    kind: EntityKind | None = None
    state: str | None = None
    labels: tuple[str, ...] = ()
    author: str | None = None
    assignee: str | None = None
    milestone: str | None = None
    updated_after_ms: int | None = None

    @property
    def kinds(self) -> tuple[EntityKind, ...]:
        return KINDS if self.kind is None else (self.kind,)

    @property
    def matches_nothing(self) -> bool:
        return self.project_ids == ()

    @property
    def is_empty(self) -> bool:
        return self == EntityFilter(kind=self.kind)


def entity_filter(conn: apsw.Connection, params: ListFilters) -> EntityFilter:
    """The wire filters in store terms (the project resolved against the mirror's projects)."""
    after = params.updated_after
    return EntityFilter(
        project_ids=None if params.project is None else tuple(project_ids(conn, params.project)),
        kind=params.kind,
        state=None if params.state in (None, "all") else params.state,
        labels=tuple(dict.fromkeys(label.strip() for label in params.labels)),
        author=None if params.author is None else clean_username(params.author),
        assignee=None if params.assignee is None else clean_username(params.assignee),
        milestone=params.milestone,
        updated_after_ms=None if after is None else iso_to_ms(after),
    )


def table_of(kind: EntityKind) -> str:
    return _TABLES[kind][0]


def conditions(f: EntityFilter, kind: EntityKind) -> tuple[list[str], list[Any]]:
    """``WHERE`` terms (AND-ed) over ``e``, a row of ``kind``'s table, and their bound values."""
    _, labels_table, assignees_table, owner = _TABLES[kind]
    terms: list[str] = []
    values: list[Any] = []
    if f.project_ids is not None:
        terms.append(_in("e.project_id", f.project_ids))
        values.extend(f.project_ids)
    if f.state is not None:
        terms.append("e.state = ?")
        values.append(f.state)
    for label in f.labels:
        terms.append(
            f"EXISTS (SELECT 1 FROM {labels_table} AS l WHERE l.{owner} = e.gitlab_id "  # noqa: S608 (names from _TABLES)
            "AND l.label = ? COLLATE NOCASE)"
        )
        values.append(label)
    if f.author is not None:
        terms.append("e.author_username = ? COLLATE NOCASE")
        values.append(f.author)
    if f.assignee is not None:
        terms.append(
            f"EXISTS (SELECT 1 FROM {assignees_table} AS a JOIN users AS u ON u.gitlab_id = a.user_id "  # noqa: S608
            f"WHERE a.{owner} = e.gitlab_id AND u.username = ? COLLATE NOCASE)"
        )
        values.append(f.assignee)
    if f.milestone is not None:
        terms.append("e.milestone_id IN (SELECT gitlab_id FROM milestones WHERE title = ?)")
        values.append(f.milestone)
    if f.updated_after_ms is not None:
        terms.append("e.updated_at >= ?")
        values.append(f.updated_after_ms)
    return terms, values


def _in(column: str, ids: Sequence[int]) -> str:
    if len(ids) == 1:
        return f"{column} = ?"
    return f"{column} IN ({', '.join('?' for _ in ids)})" if ids else "0"
