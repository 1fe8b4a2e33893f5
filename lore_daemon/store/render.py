"""Render the searchable documents of sources from the mirrored rows, a whole batch at a time.

Rendering source by source took 3-7 point queries each (a discussion: its row, its parent, its
notes, its project's path), and the Python/apsw overhead of each query was most of the cost.
:func:`render_sources` loads what a batch needs with one set-based query per kind of row (ids go
in as one JSON array through ``json_each(?)``), groups the rows in Python and composes each
document with ``store/render_text.py``: on the 2,000-issue replay (12,600 sources) ~8 us a
source instead of ~17. :func:`render_source` is the same path with one key, so both give the
same bytes.

Orders that matter are kept where they were decided before: names and notes are sorted in Python
(code-point order, which is SQLite's BINARY collation on UTF-8 text), closes links and files by
ORDER BY (one sorter per batch now, no longer one per source).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import apsw
import msgspec

from lore_daemon.store.keys import SourceKey, check_key
from lore_daemon.store.render_text import (
    MAX_LISTED_FILES,
    MrExtras,
    Rendered,
    Row,
    discussion_document,
    issue_document,
    mr_document,
)

__all__ = ["MAX_LISTED_FILES", "Rendered", "render_source", "render_sources"]

# A source's own row starts with its id, sliced off before composing. The rows listed under a
# source (closes links, files, notes) end with its id instead: grouped as they are, not copied.
# The other columns are what render_text's composers take, in its order.
ISSUES = """
SELECT e.gitlab_id, e.iid, e.title, e.description, e.state, e.issue_type, e.confidential,
       e.author_username, e.web_url, e.created_at, e.closed_at, e.due_date, e.project_id,
       p.path_with_namespace, m.title
FROM issues AS e
LEFT JOIN projects AS p ON p.gitlab_id = e.project_id
LEFT JOIN milestones AS m ON m.gitlab_id = e.milestone_id
WHERE e.gitlab_id IN (SELECT value FROM json_each(?))
"""
_ISSUE_LABELS = "SELECT issue_id, label FROM issue_labels WHERE issue_id IN (SELECT value FROM json_each(?))"
_ISSUE_ASSIGNEES = """
SELECT a.issue_id, u.username FROM issue_assignees AS a JOIN users AS u ON u.gitlab_id = a.user_id
WHERE a.issue_id IN (SELECT value FROM json_each(?))
"""

MRS = """
SELECT e.gitlab_id, e.iid, e.title, e.description, e.state, e.draft, e.author_username, e.web_url,
       e.created_at, e.merged_at, e.closed_at, e.source_branch, e.target_branch, e.project_id,
       p.path_with_namespace, m.title
FROM merge_requests AS e
LEFT JOIN projects AS p ON p.gitlab_id = e.project_id
LEFT JOIN milestones AS m ON m.gitlab_id = e.milestone_id
WHERE e.gitlab_id IN (SELECT value FROM json_each(?))
"""
_MR_LABELS = """
SELECT merge_request_id, label FROM mr_labels WHERE merge_request_id IN (SELECT value FROM json_each(?))
"""
_MR_ASSIGNEES = """
SELECT a.merge_request_id, u.username FROM mr_assignees AS a JOIN users AS u ON u.gitlab_id = a.user_id
WHERE a.merge_request_id IN (SELECT value FROM json_each(?))
"""
_MR_REVIEWERS = """
SELECT a.merge_request_id, u.username FROM mr_reviewers AS a JOIN users AS u ON u.gitlab_id = a.user_id
WHERE a.merge_request_id IN (SELECT value FROM json_each(?))
"""
_CLOSES = """
SELECT r.target_iid, r.target_id, r.target_project_id, p.path_with_namespace, r.source_id
FROM entity_references AS r LEFT JOIN projects AS p ON p.gitlab_id = r.target_project_id
WHERE r.source_type = 'merge_request' AND r.reference_type = 'closes'
  AND r.source_id IN (SELECT value FROM json_each(?))
ORDER BY r.source_id, r.target_project_id, r.target_iid, r.target_id
"""
_FILES = """
SELECT old_path, new_path, new_file, renamed_file, deleted_file, merge_request_id FROM mr_file_changes
WHERE merge_request_id IN (SELECT value FROM json_each(?))
ORDER BY merge_request_id, new_path, old_path
"""

# The parent comes from whichever table noteable_type names (the ON conditions exclude each
# other, so coalesce picks that one); a NULL iid means the parent is gone.
DISCUSSIONS = """
SELECT d.id, d.noteable_type, d.project_id, p.path_with_namespace,
       coalesce(i.iid, m.iid), coalesce(i.title, m.title), coalesce(i.web_url, m.web_url)
FROM discussions AS d
LEFT JOIN issues AS i ON d.noteable_type = 'issue' AND i.gitlab_id = d.noteable_id
LEFT JOIN merge_requests AS m ON d.noteable_type = 'merge_request' AND m.gitlab_id = d.noteable_id
LEFT JOIN projects AS p ON p.gitlab_id = d.project_id
WHERE d.id IN (SELECT value FROM json_each(?))
"""
# The minute a note was written, formatted by SQLite where that is exactly what Python's
# datetime gives (integer ms from 1970 to 9999, where truncating division is flooring): ~0.3 us
# against ~1.2 us in Python. NULL elsewhere, and render_text formats it as before.
NOTES = """
SELECT gitlab_id, author_username, created_at, body, system, note_type, position_old_path,
       position_new_path, position_old_line, position_new_line, resolvable, resolved,
       CASE WHEN typeof(created_at) = 'integer' AND created_at BETWEEN 0 AND 253402300799999
            THEN strftime('%Y-%m-%d %H:%M', created_at / 1000, 'unixepoch') END,
       discussion_id
FROM notes WHERE discussion_id IN (SELECT value FROM json_each(?))
"""


def render_source(conn: apsw.Connection, key: SourceKey) -> Rendered | None:
    """The document of ``key``, or None when its source no longer exists."""
    checked = check_key(key)
    return render_sources(conn, [checked])[checked]


def render_sources(conn: apsw.Connection, keys: Sequence[SourceKey]) -> dict[SourceKey, Rendered | None]:
    """The document of every key (None where its source no longer exists), in key order, from at
    most 11 queries whatever the number of keys.

    Raises on the first source that cannot be rendered; a caller that must isolate it renders the
    keys in smaller groups (rendering only reads, so retrying is safe).
    """
    checked = [check_key(key) for key in keys]
    ids_by_type: dict[str, list[int]] = {}
    for source_type, source_id in checked:
        ids_by_type.setdefault(source_type, []).append(source_id)
    documents = {
        source_type: _RENDERERS[source_type](conn, msgspec.json.encode(ids).decode())
        for source_type, ids in ids_by_type.items()
    }
    return {key: documents[key[0]].get(key[1]) for key in checked}


def _grouped(conn: apsw.Connection, sql: str, ids: str) -> dict[int, list[Row]]:
    """The rows ``sql`` selects for ``ids``, grouped by their last column (kept in query order)."""
    groups: defaultdict[int, list[Row]] = defaultdict(list)
    for row in conn.execute(sql, (ids,)):
        groups[row[-1]].append(row)  # the owner id: an INTEGER column
    return groups


def _names(conn: apsw.Connection, sql: str, ids: str) -> dict[int, list[str]]:
    """The names (one NOT NULL text column after the owner id) of each owner, unsorted."""
    groups: defaultdict[int, list[str]] = defaultdict(list)
    for owner_id, name in conn.execute(sql, (ids,)):
        groups[owner_id].append(str(name))
    return groups


def _issues(conn: apsw.Connection, ids: str) -> dict[int, Rendered | None]:
    rows: Sequence[Row] = conn.execute(ISSUES, (ids,)).fetchall()
    if not rows:
        return {}
    labels = _names(conn, _ISSUE_LABELS, ids)
    assignees = _names(conn, _ISSUE_ASSIGNEES, ids)
    return {row[0]: issue_document(row[1:], labels.get(row[0]), assignees.get(row[0])) for row in rows}


def _merge_requests(conn: apsw.Connection, ids: str) -> dict[int, Rendered | None]:
    rows: Sequence[Row] = conn.execute(MRS, (ids,)).fetchall()
    if not rows:
        return {}
    labels = _names(conn, _MR_LABELS, ids)
    assignees = _names(conn, _MR_ASSIGNEES, ids)
    reviewers = _names(conn, _MR_REVIEWERS, ids)
    closes = _grouped(conn, _CLOSES, ids)
    files = _grouped(conn, _FILES, ids)
    documents: dict[int, Rendered | None] = {}
    for row in rows:
        mr_id = row[0]
        extras = MrExtras(labels.get(mr_id), assignees.get(mr_id), reviewers.get(mr_id), closes.get(mr_id),
                          files.get(mr_id))
        documents[mr_id] = mr_document(row[1:], extras)
    return documents


def _discussions(conn: apsw.Connection, ids: str) -> dict[int, Rendered | None]:
    rows: Sequence[Row] = conn.execute(DISCUSSIONS, (ids,)).fetchall()
    if not rows:
        return {}
    notes = _grouped(conn, NOTES, ids)
    return {row[0]: discussion_document(row[1:], notes.get(row[0])) for row in rows}


_Loader = Callable[[apsw.Connection, str], dict[int, Rendered | None]]
_RENDERERS: dict[str, _Loader] = {
    "issue": _issues,
    "merge_request": _merge_requests,
    "discussion": _discussions,
}
