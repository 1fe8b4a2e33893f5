"""``lore/get`` from the mirror: one issue or MR with what ``include`` asks for (SPEC §12).

Every section is one indexed query keyed by the entity (discussions by their parent, notes by
their discussions, events by entity, links both ways, file changes by MR), all inside one read
transaction. Nothing here talks to GitLab: the read-through sync is the service's business.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import apsw
import msgspec

from lore_daemon.protocol import EntityKind
from lore_daemon.protocol_read import (
    Discussion,
    EntityDetail,
    EntityEvent,
    EntityLinks,
    FileChange,
    LinkedEntity,
    LocalFreshness,
    Note,
    NotePosition,
)
from lore_daemon.store.read_common import (
    KIND_ENTITY_TYPE,
    project_ids,
    snapshot,
    stamp,
    stamp_or_none,
)

_ISSUE = """
SELECT e.gitlab_id, e.iid, p.path_with_namespace, e.title, e.description, e.state, e.author_username,
       m.title, e.web_url, e.created_at, e.updated_at, e.closed_at, NULL, NULL, NULL, NULL, NULL,
       e.confidential, e.issue_type, e.user_notes_count, e.last_seen_at
FROM issues AS e
JOIN projects AS p ON p.gitlab_id = e.project_id
LEFT JOIN milestones AS m ON m.gitlab_id = e.milestone_id
WHERE e.project_id = ? AND e.iid = ?
"""
_MR = """
SELECT e.gitlab_id, e.iid, p.path_with_namespace, e.title, e.description, e.state, e.author_username,
       m.title, e.web_url, e.created_at, e.updated_at, e.closed_at, e.merged_at, e.source_branch,
       e.target_branch, e.draft, e.detailed_merge_status, NULL, NULL, e.user_notes_count, e.last_seen_at
FROM merge_requests AS e
JOIN projects AS p ON p.gitlab_id = e.project_id
LEFT JOIN milestones AS m ON m.gitlab_id = e.milestone_id
WHERE e.project_id = ? AND e.iid = ?
"""
_LABELS = {
    "issue": "SELECT label FROM issue_labels WHERE issue_id = ? ORDER BY label",
    "mr": "SELECT label FROM mr_labels WHERE merge_request_id = ? ORDER BY label",
}
_PEOPLE_SQL = (
    "SELECT u.username FROM {table} AS a JOIN users AS u ON u.gitlab_id = a.user_id WHERE a.{owner} = ?"
)
_PEOPLE = {
    ("assignees", "issue"): _PEOPLE_SQL.format(table="issue_assignees", owner="issue_id"),
    ("assignees", "mr"): _PEOPLE_SQL.format(table="mr_assignees", owner="merge_request_id"),
    ("reviewers", "mr"): _PEOPLE_SQL.format(table="mr_reviewers", owner="merge_request_id"),
}
_DISCUSSIONS = """
SELECT id, gitlab_id, individual_note, created_at FROM discussions
WHERE noteable_type = ? AND noteable_id = ?
"""
_NOTES = """
SELECT n.discussion_id, n.gitlab_id, n.note_type, n.author_username, n.body, n.created_at,
       n.updated_at, n.system, n.resolvable, n.resolved, n.position_json, n.position_old_path,
       n.position_new_path, n.position_old_line, n.position_new_line
FROM discussions AS d JOIN notes AS n ON n.discussion_id = d.id
WHERE d.noteable_type = ? AND d.noteable_id = ?
ORDER BY n.created_at, n.gitlab_id
"""
_EVENTS = """
SELECT 'state', gitlab_id, created_at, username, state, source_commit, source_merge_request_id,
       NULL, NULL, NULL
FROM resource_state_events WHERE entity_type = ?1 AND entity_id = ?2
UNION ALL
SELECT 'label', gitlab_id, created_at, username, NULL, NULL, NULL, action, label_name, NULL
FROM resource_label_events WHERE entity_type = ?1 AND entity_id = ?2
UNION ALL
SELECT 'milestone', gitlab_id, created_at, username, NULL, NULL, NULL, action, NULL, milestone_title
FROM resource_milestone_events WHERE entity_type = ?1 AND entity_id = ?2
ORDER BY 3, 1, 2
"""
_CLOSES = """
SELECT r.target_iid, r.target_id, coalesce(p.path_with_namespace, CAST(r.target_project_id AS TEXT)),
       i.title, i.state, i.web_url, i.gitlab_id IS NOT NULL
FROM entity_references AS r
LEFT JOIN projects AS p ON p.gitlab_id = r.target_project_id
LEFT JOIN issues AS i ON i.gitlab_id = r.target_id
WHERE r.source_type = 'merge_request' AND r.source_id = ? AND r.reference_type = 'closes'
ORDER BY r.target_project_id, r.target_iid, r.target_id
"""
_CLOSED_BY = """
SELECT m.iid, p.path_with_namespace, m.title, m.state, m.web_url
FROM entity_references AS r
JOIN merge_requests AS m ON m.gitlab_id = r.source_id
JOIN projects AS p ON p.gitlab_id = m.project_id
WHERE r.target_type = 'issue' AND r.target_id = ? AND +r.source_type = 'merge_request'
  AND r.reference_type = 'closes'
ORDER BY m.project_id, m.iid
"""
_FILES = """
SELECT old_path, new_path, new_file, renamed_file, deleted_file FROM mr_file_changes
WHERE merge_request_id = ? ORDER BY new_path, old_path
"""



# ``notes.position_json`` is the position as GitLab sent it (snake_case): read it into the wire
# Struct through that Struct's own field list (unknown keys, e.g. an image position's x/y, dropped).
_POSITION_KEYS = {f.name: f.encode_name for f in msgspec.structs.fields(NotePosition)}


def _stored_position(position_json: str) -> NotePosition | None:
    try:
        raw = msgspec.json.decode(position_json)
        if not isinstance(raw, dict):
            return None
        return msgspec.convert(
            {_POSITION_KEYS[k]: v for k, v in raw.items() if k in _POSITION_KEYS}, NotePosition
        )
    except (msgspec.DecodeError, msgspec.ValidationError):  # kept as sent; fall back to the columns
        return None


def load_detail(
    conn: apsw.Connection,
    project: str,
    kind: EntityKind,
    iid: int,
    include: Collection[str],
    now_ms: int,
) -> EntityDetail | None:
    """The entity as the mirror holds it (``local.source`` = ``mirror``), or None when absent.

    ``project`` is a path (any case) or a numeric id. Sections not in ``include`` are ``None``.
    """
    with snapshot(conn):
        for project_id in project_ids(conn, project):
            row = conn.execute(_ISSUE if kind == "issue" else _MR, (project_id, iid)).fetchone()
            if row is not None:
                return _detail(conn, kind, row, frozenset(include), now_ms)
        return None


def _people(conn: apsw.Connection, role: str, kind: str, gitlab_id: int) -> list[str]:
    """Usernames in the role, sorted (GitLab's order is not kept by the link tables)."""
    sql = _PEOPLE.get((role, kind))
    return [] if sql is None else sorted(str(r[0]) for r in conn.execute(sql, (gitlab_id,)))


def _detail(
    conn: apsw.Connection, kind: EntityKind, row: Sequence[Any], include: frozenset[str], now_ms: int
) -> EntityDetail:
    (gitlab_id, iid, project_path, title, description, state, author, milestone, web_url, created,
     updated, closed, merged, source_branch, target_branch, draft, merge_status, confidential,
     issue_type, notes_count, last_seen) = row
    entity_type = KIND_ENTITY_TYPE[kind]
    labels = [str(r[0]) for r in conn.execute(_LABELS[kind], (gitlab_id,))]
    return EntityDetail(
        kind=kind,
        iid=int(iid),
        project=str(project_path),
        title=str(title),
        description=description,
        state=str(state),
        author=author,
        assignees=_people(conn, "assignees", kind, gitlab_id),
        reviewers=_people(conn, "reviewers", kind, gitlab_id),
        labels=labels,
        milestone=milestone,
        web_url=str(web_url),
        created_at=stamp(created),
        updated_at=stamp(updated),
        closed_at=stamp_or_none(closed),
        merged_at=stamp_or_none(merged),
        source_branch=source_branch,
        target_branch=target_branch,
        draft=None if kind == "issue" else bool(draft),
        detailed_merge_status=merge_status,
        confidential=None if kind == "mr" else bool(confidential),
        issue_type=issue_type,
        user_notes_count=int(notes_count),
        discussions=_discussions(conn, entity_type, gitlab_id) if "discussions" in include else None,
        events=_events(conn, entity_type, gitlab_id) if "events" in include else None,
        links=_links(conn, kind, gitlab_id) if "links" in include else None,
        file_changes=_files(conn, kind, gitlab_id) if "fileChanges" in include else None,
        local=LocalFreshness(
            last_seen_at=stamp(last_seen), age_ms=max(0, now_ms - int(last_seen)), source="mirror"
        ),
    )


def _note(row: Sequence[Any]) -> Note:
    (_, gitlab_id, note_type, author, body, created, updated, system, resolvable, resolved,
     position_json, old_path, new_path, old_line, new_line) = row
    position = _stored_position(position_json) if position_json else None
    if position is None and (old_path or new_path):
        position = NotePosition(old_path=old_path, new_path=new_path, old_line=old_line, new_line=new_line)
    return Note(
        id=int(gitlab_id),
        type=note_type,
        author=author,
        body=str(body),
        created_at=stamp(created),
        updated_at=stamp(updated),
        system=bool(system),
        resolvable=bool(resolvable),
        resolved=bool(resolved),
        position=position,
    )


def _discussions(conn: apsw.Connection, entity_type: str, gitlab_id: int) -> list[Discussion]:
    """Threads oldest first (by their first note), each with its notes oldest first."""
    heads = {int(r[0]): r for r in conn.execute(_DISCUSSIONS, (entity_type, gitlab_id))}
    notes: dict[int, list[Note]] = {local_id: [] for local_id in heads}
    first_ms: dict[int, int] = {}
    for row in conn.execute(_NOTES, (entity_type, gitlab_id)):  # oldest first
        local_id = int(row[0])
        first_ms.setdefault(local_id, int(row[5]))
        notes[local_id].append(_note(row))
    order = sorted(heads, key=lambda local_id: (first_ms.get(local_id, heads[local_id][3] or 0), local_id))
    out: list[Discussion] = []
    for local_id in order:
        _, discussion_id, individual, created = heads[local_id]
        thread = notes[local_id]
        resolvable = [n for n in thread if n.resolvable]
        out.append(Discussion(
            id=str(discussion_id),
            individual_note=bool(individual),
            resolvable=bool(resolvable),
            resolved=bool(resolvable) and all(n.resolved for n in resolvable),
            created_at=stamp_or_none(created),
            notes=thread,
        ))
    return out


def _events(conn: apsw.Connection, entity_type: str, gitlab_id: int) -> list[EntityEvent]:
    return [
        EntityEvent(
            type=event_type, id=int(event_id), created_at=stamp(created), user=user, state=state,
            source_commit=commit, source_merge_request_id=source_mr, action=action, label=label,
            milestone=milestone,
        )
        for (event_type, event_id, created, user, state, commit, source_mr, action, label, milestone)
        in conn.execute(_EVENTS, (entity_type, gitlab_id))
    ]


def _links(conn: apsw.Connection, kind: EntityKind, gitlab_id: int) -> EntityLinks:
    if kind == "mr":
        closes = [
            LinkedEntity(
                kind="issue", iid=None if target_iid is None else int(target_iid),
                project=None if target_iid is None else project,
                title=title, state=state, web_url=web_url, in_mirror=bool(in_mirror),
                external=target_iid is None,
                external_id=str(target_id) if target_iid is None else None,
            )
            for target_iid, target_id, project, title, state, web_url, in_mirror
            in conn.execute(_CLOSES, (gitlab_id,))
        ]
        return EntityLinks(closes=closes)
    closed_by = [
        LinkedEntity(
            kind="mr", iid=int(iid), project=str(project), title=title,
            state=state, web_url=web_url, in_mirror=True,
        )
        for iid, project, title, state, web_url in conn.execute(_CLOSED_BY, (gitlab_id,))
    ]
    return EntityLinks(closed_by=closed_by)


def _files(conn: apsw.Connection, kind: EntityKind, gitlab_id: int) -> list[FileChange]:
    if kind != "mr":
        return []
    return [
        FileChange(
            old_path=str(old), new_path=str(new), new_file=bool(added), renamed_file=bool(renamed),
            deleted_file=bool(deleted),
        )
        for old, new, added, renamed, deleted in conn.execute(_FILES, (gitlab_id,))
    ]
