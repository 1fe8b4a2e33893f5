"""The batch renderer on a real database: the same documents as rendering each source alone.

The corpus is written through the real ingest and dependent writers and covers every rule of the
renderer: missing sources, a discussion whose parent is gone, a discussion with no notes, an MR
listing more than MAX_LISTED_FILES files, closes links within the project, to a mirrored or an
unmirrored other project and to an external tracker, system notes, DiffNotes and unicode.
"""

from __future__ import annotations

from typing import Any

import apsw
import pytest

from lore_daemon.store.dependents import replace_closes_issues, replace_discussions, replace_mr_diffs
from lore_daemon.store.entities import ingest_issue, ingest_merge_request, upsert_project
from lore_daemon.store.keys import SourceKey
from lore_daemon.store.render import MAX_LISTED_FILES, Rendered, render_source, render_sources
from lore_daemon.timeutil import ms_to_iso

OTHER_PROJECT = 555  # mirrored: closes links to it show its path
UNMIRRORED_PROJECT = 777  # not mirrored: closes links to it show its id
MISSING: list[SourceKey] = [("issue", 424_242), ("merge_request", 1), ("discussion", 999_999)]


def _discussions(conn: apsw.Connection, gl: Any, kind: str, parent_id: int, threads: list[Any]) -> list[SourceKey]:
    written = replace_discussions(
        conn, project_id=gl.project_id, parent_kind=kind, parent_id=parent_id, discussions=threads, now_ms=gl.NOW
    )
    return sorted(written.touched)


def build_corpus(conn: apsw.Connection, gl: Any) -> dict[str, SourceKey]:
    """Write the edge-case corpus; returns its sources by a descriptive name."""
    people = [{"id": 1, "username": "alice"}, {"id": 5, "username": "Zoë"}, {"id": 6, "username": "erin"}]
    keys: dict[str, SourceKey] = {}
    with conn:
        upsert_project(conn, gl.project(id=OTHER_PROJECT, path_with_namespace="other/proj"), now_ms=gl.NOW)
        issue = gl.issue(
            1,
            title="Login crashes on Safari — ünïcode 🎉",
            description="  Steps:\n1. open\n2. crash  \n",
            labels=["bug", "Browser", "émoji 🎉", "zzz", "ábc"],
            assignees=people,
            confidential=True,
            closed_at=ms_to_iso(gl.T0 + 3_600_000),
            due_date="2024-01-31",
            milestone={"id": 9, "iid": 1, "project_id": gl.project_id, "title": "v1.0", "state": "active"},
        )
        keys["issue_full"] = ingest_issue(conn, gl.project_id, issue, now_ms=gl.NOW).key
        bare = gl.issue(2, description=None, labels=[], assignees=[], author=None, issue_type=None)
        keys["issue_bare"] = ingest_issue(conn, gl.project_id, bare, now_ms=gl.NOW).key
        blank = gl.issue(3, description="   \n ", created_at="0987-06-05T04:03:02.001Z")
        keys["issue_blank_body_old_date"] = ingest_issue(conn, gl.project_id, blank, now_ms=gl.NOW).key
        doomed = gl.issue(4)
        keys["issue_doomed"] = ingest_issue(conn, gl.project_id, doomed, now_ms=gl.NOW).key

        many = gl.mr(1, title="Fix Safari login", draft=True, labels=["b", "a", "C"], assignees=people,
                     reviewers=[{"id": 7, "username": "carol"}, {"id": 1, "username": "alice"}],
                     merged_at=ms_to_iso(gl.T0 + 60_000))
        keys["mr_many_files"] = ingest_merge_request(conn, gl.project_id, many, now_ms=gl.NOW).key
        exact = gl.mr(2, source_branch=None, target_branch=None, labels=[], assignees=[], reviewers=[],
                      author=None, description=None)
        keys["mr_exact_files"] = ingest_merge_request(conn, gl.project_id, exact, now_ms=gl.NOW).key
        keys["mr_plain"] = ingest_merge_request(conn, gl.project_id, gl.mr(3, target_branch=None), now_ms=gl.NOW).key

        closes = [
            *gl.closes(1),
            *gl.closes(7, project_id=OTHER_PROJECT),
            *gl.closes(3, project_id=UNMIRRORED_PROJECT),
            *gl.closes(2),
        ]
        closes += [type(closes[0])(id=99_001, title="JIRA-1"), type(closes[0])(id=99_002, iid=12)]
        replace_closes_issues(conn, project_id=gl.project_id, mr_id=50_001, issues=closes, now_ms=gl.NOW)
        extra = MAX_LISTED_FILES + 7
        diffs = [gl.diff(f"src/f{n:03}.py") for n in range(extra - 4)]
        diffs += [
            gl.diff("old/name.py", "new/náme.py", renamed_file=True),
            gl.diff("added.py", new_file=True),
            gl.diff("gone.py", deleted_file=True),
            gl.diff("Ä.py"),
        ]
        replace_mr_diffs(conn, mr_id=50_001, diffs=diffs)
        replace_mr_diffs(conn, mr_id=50_002, diffs=[gl.diff(f"d/{n:03}") for n in range(MAX_LISTED_FILES)])

        threads = [
            gl.discussion(
                "a",
                gl.note(13, "later but lower id", minute=5),
                gl.note(11, "  Repro on macOS — ünïcode ✓  ", minute=1),
                gl.note(12, "same minute, higher id", minute=1, author=9),
                gl.note(14, "changed the description", system=True, minute=7),
            ),
            gl.discussion(
                "b",
                gl.diff_note(21, "this line", "src/login.py", 42, resolved=True),
                gl.diff_note(22, "resolved too", "src/other.py", 3, resolved=True, minute=2),
            ),
            gl.discussion(
                "c",
                gl.diff_note(31, "unresolved", "a.py", 1),
                gl.diff_note(32, "resolved", "a.py", 2, resolved=True, minute=1),
                gl.note(33, "plain reply", minute=2),
            ),
            gl.discussion("d", {**gl.note(41, "system only", system=True), "author": None}, individual=True),
            gl.discussion("e"),  # no notes at all
        ]
        for name, key in zip(("notes_unordered", "diffnotes_resolved", "diffnotes_partly_resolved",
                              "system_no_author", "no_notes"), _discussions(conn, gl, "issue", 10_001, threads),
                             strict=True):
            keys[f"discussion_{name}"] = key
        old_line = gl.diff_note(51, "old side", "x.py", 5)
        old_line["position"].update({"new_line": None, "old_line": 8, "new_path": None})
        no_line = gl.diff_note(52, "file level", "y.py", 1)
        no_line["position"].update({"new_line": None, "old_line": None})
        mr_threads = [gl.discussion("f", old_line, no_line), gl.discussion("g", gl.note(61, "on the MR"))]
        for name, key in zip(("mr_old_line", "mr_plain"), _discussions(conn, gl, "mr", 50_001, mr_threads),
                             strict=True):
            keys[f"discussion_{name}"] = key
        (orphan,) = _discussions(conn, gl, "issue", 10_004, [gl.discussion("h", gl.note(71, "orphaned"))])
        keys["discussion_parent_gone"] = orphan
        conn.execute("DELETE FROM issues WHERE gitlab_id = ?", (10_004,))  # the parent vanished alone
    return keys


def all_sources(conn: apsw.Connection) -> list[SourceKey]:
    """Every issue, MR and discussion in the database."""
    return [
        (str(source_type), int(source_id))
        for source_type, source_id in conn.execute(
            "SELECT 'issue', gitlab_id FROM issues UNION ALL SELECT 'merge_request', gitlab_id FROM merge_requests"
            " UNION ALL SELECT 'discussion', id FROM discussions"
        )
    ]


@pytest.fixture
def corpus(store_db: apsw.Connection, gl: Any) -> dict[str, SourceKey]:
    return build_corpus(store_db, gl)
