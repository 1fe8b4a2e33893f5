"""The text of a document, composed from rows already loaded (no database access here).

Documents hold what a person searching would type or want to read: identifiers, title, state,
people, labels, milestone, branches, closed issues, touched files and the text itself. Volatile
numbers (``updated_at``, vote counts) are left out on purpose: they would change the content hash,
and so force a re-embedding, without changing what the document is about.

``store/render.py`` loads the rows (for one source or a whole batch) and calls the composers here,
so a source renders to the same bytes whichever way it was loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lore_daemon.timeutil import ms_to_iso

MAX_LISTED_FILES = 100

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    content: str
    url: str | None
    project_id: int | None


_EPOCH = datetime(1970, 1, 1)  # naive UTC: adding a timedelta is the cheapest exact ms -> date
_PADDED_YEARS = 1000  # from here on isoformat and ms_to_iso (strftime) agree on the year digits


def _day(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.date().isoformat() if moment.year >= _PADDED_YEARS else ms_to_iso(ms)[:10]


def _minute(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    if moment.year >= _PADDED_YEARS:
        return moment.isoformat(" ", "minutes")
    iso = ms_to_iso(ms)
    return f"{iso[:10]} {iso[11:16]}"


def joined_names(names: list[str] | None, prefix: str = "") -> str | None:
    """Names sorted here rather than by an ORDER BY (Python's code-point order equals SQLite's
    BINARY collation on UTF-8 text), comma-joined; None when there are none."""
    if not names:
        return None
    return ", ".join([f"{prefix}{name}" for name in sorted(names)])


def _lines(fields: list[tuple[str, Any]]) -> list[str]:
    return [f"{label}: {value}" for label, value in fields if value not in (None, "")]


def _compose(header: str, fields: list[tuple[str, Any]], body: str | None) -> str:
    parts = [header, *_lines(fields)]
    text = "\n".join(parts)
    return f"{text}\n\n{body.strip()}" if body and body.strip() else text


def issue_document(row: Row, labels: list[str] | None, assignees: list[str] | None) -> Rendered:
    """``row`` as selected by render.ISSUES after its id column."""
    iid, title, description, state, issue_type, confidential, author, url, created, closed, due = row[:11]
    project_id, project_path, milestone = row[11:14]
    doc_title = f"#{iid} {title}"
    fields: list[tuple[str, Any]] = [
        ("Project", project_path),
        ("Type", issue_type),
        ("State", f"{state}, confidential" if confidential else state),
        ("Author", f"@{author}" if author else None),
        ("Assignees", joined_names(assignees, "@")),
        ("Labels", joined_names(labels)),
        ("Milestone", milestone),
        ("Created", _day(created)),
        ("Closed", _day(closed)),
        ("Due", due),
    ]
    return Rendered(doc_title, _compose(doc_title, fields, description), url, project_id)


def _closes(refs: list[Row] | None, project_id: int) -> str | None:
    """``refs``: (target_iid, target_id, target_project_id, target path) in the stored order."""
    if not refs:
        return None
    shown = []
    for target_iid, target_id, target_project, target_path, _mr_id in refs:
        if target_iid is None:
            shown.append(f"external issue {target_id}")
        elif target_project in (None, project_id):
            shown.append(f"#{target_iid}")
        else:
            shown.append(f"{target_path or target_project}#{target_iid}")
    return ", ".join(shown)


def _files(rows: list[Row] | None) -> str | None:
    """``rows``: (old_path, new_path, new_file, renamed_file, deleted_file) by (new, old) path."""
    if not rows:
        return None
    shown = []
    for old_path, new_path, new_file, renamed, deleted, _mr_id in rows[:MAX_LISTED_FILES]:
        if renamed:
            shown.append(f"{new_path} (renamed from {old_path})")
        elif new_file:
            shown.append(f"{new_path} (new)")
        elif deleted:
            shown.append(f"{old_path} (deleted)")
        else:
            shown.append(str(new_path))
    more = len(rows) - len(shown)
    return f"({len(rows)}) " + ", ".join(shown) + (f", and {more} more" if more > 0 else "")


@dataclass(slots=True)
class MrExtras:
    """What an MR document lists besides its own row; None where the MR has none."""

    labels: list[str] | None = None
    assignees: list[str] | None = None
    reviewers: list[str] | None = None
    closes: list[Row] | None = None
    files: list[Row] | None = None


def mr_document(row: Row, extras: MrExtras) -> Rendered:
    """``row`` as selected by render.MRS after its id column."""
    iid, title, description, state, draft, author, url, created, merged, closed = row[:10]
    source_branch, target_branch, project_id, project_path, milestone = row[10:15]
    branches = f"{source_branch} -> {target_branch}" if source_branch or target_branch else None
    doc_title = f"!{iid} {title}"
    fields: list[tuple[str, Any]] = [
        ("Project", project_path),
        ("State", f"{state}, draft" if draft else state),
        ("Author", f"@{author}" if author else None),
        ("Assignees", joined_names(extras.assignees, "@")),
        ("Reviewers", joined_names(extras.reviewers, "@")),
        ("Labels", joined_names(extras.labels)),
        ("Milestone", milestone),
        ("Branches", branches),
        ("Created", _day(created)),
        ("Merged", _day(merged)),
        ("Closed", _day(closed)),
        ("Closes", _closes(extras.closes, project_id)),
        ("Files changed", _files(extras.files)),
    ]
    return Rendered(doc_title, _compose(doc_title, fields, description), url, project_id)


def _note_order(note: Row) -> tuple[int, int]:
    return (note[2], note[0])


def _note_line(note: Row) -> str:
    """One note as a line; ``note[12]`` is its minute when SQLite could format it exactly."""
    _, author, created, body, system, note_type, old_path, new_path, old_line, new_line = note[:10]
    who = f"@{author}" if author else "@unknown"
    where = ""
    if note_type == "DiffNote" and (new_path or old_path):
        line = new_line if new_line is not None else old_line
        where = f" on {new_path or old_path}" + (f":{line}" if line is not None else "")
    marker = "[system] " if system else ""
    minute = note[12] if note[12] is not None else _minute(int(created))
    return f"{marker}{who} ({minute}){where}: {str(body).strip()}"


def discussion_document(row: Row, notes: list[Row] | None) -> Rendered | None:
    """``row`` as selected by render.DISCUSSIONS after its id column; ``notes`` as render.NOTES
    selects them, in any order. None when the parent is gone or the discussion has no notes."""
    noteable_type, project_id, project_path, parent_iid, parent_title, parent_url = row[:6]
    if parent_iid is None or not notes:
        return None
    if len(notes) > 1:
        notes = sorted(notes, key=_note_order)  # (created_at, gitlab_id): NOT NULL integers
    sigil = "#" if noteable_type == "issue" else "!"
    doc_title = f"Discussion on {sigil}{parent_iid}: {parent_title}"
    resolvable = [note[11] for note in notes if note[10]]
    resolved = ("yes" if all(resolvable) else "no") if resolvable else None
    header = "\n".join([doc_title, *_lines([("Project", project_path), ("Resolved", resolved)])])
    content = header + "\n\n" + "\n".join([_note_line(note) for note in notes])
    url = f"{parent_url}#note_{notes[0][0]}" if parent_url else None
    return Rendered(doc_title, content, url, project_id)
