"""The batch renderer on a real database: the same documents as rendering each source alone.

The corpus is written through the real ingest and dependent writers and covers every rule of the
renderer: missing sources, a discussion whose parent is gone, a discussion with no notes, an MR
listing more than MAX_LISTED_FILES files, closes links within the project, to a mirrored or an
unmirrored other project and to an external tracker, system notes, DiffNotes and unicode.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lore_daemon.errors import LoreError
from lore_daemon.store import migrate, open_connection
from lore_daemon.store.dependents import replace_closes_issues, replace_discussions, replace_mr_diffs
from lore_daemon.store.entities import ingest_issue, ingest_merge_request, upsert_project
from lore_daemon.store.keys import SourceKey
from lore_daemon.store.render import MAX_LISTED_FILES, Rendered, render_source, render_sources
from lore_daemon.timeutil import ms_to_iso
from tests.store.conftest import Payloads

OTHER_PROJECT = 555  # mirrored: closes links to it show its path
UNMIRRORED_PROJECT = 777  # not mirrored: closes links to it show its id
MISSING: list[SourceKey] = [("issue", 424_242), ("merge_request", 1), ("discussion", 999_999)]


def _discussions(
    conn: apsw.Connection, gl: Any, kind: Literal["issue", "mr"], parent_id: int, threads: list[Any]
) -> list[SourceKey]:
    written = replace_discussions(conn, project_id=gl.project_id, parent_kind=kind, parent_id=parent_id,
                                  discussions=threads, now_ms=gl.NOW)
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
        plain = gl.mr(3, target_branch=None)
        keys["mr_plain"] = ingest_merge_request(conn, gl.project_id, plain, now_ms=gl.NOW).key

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
        names = ("notes_unordered", "diffnotes_resolved", "diffnotes_partly_resolved", "system_no_author",
                 "no_notes")
        for name, key in zip(names, _discussions(conn, gl, "issue", 10_001, threads), strict=True):
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
    rows = conn.execute(
        "SELECT 'issue', gitlab_id FROM issues"
        " UNION ALL SELECT 'merge_request', gitlab_id FROM merge_requests"
        " UNION ALL SELECT 'discussion', id FROM discussions"
    )
    return [(str(source_type), int(source_id)) for source_type, source_id in rows]


@pytest.fixture
def corpus(store_db: apsw.Connection, gl: Any) -> dict[str, SourceKey]:
    return build_corpus(store_db, gl)


ISSUE_TITLE = "Login crashes on Safari — ünïcode 🎉"
ISSUE_URL = "https://gitlab.example.com/group/proj/-/issues/1"
MR_URL = "https://gitlab.example.com/group/proj/-/merge_requests/1"
ON_ISSUE = f"Discussion on #1: {ISSUE_TITLE}"
ON_MR = "Discussion on !1: Fix Safari login"

# The documents today's renderer produces for the corpus, written out in full. Sorting is by code
# point ("Zoë" < "alice", "zzz" < "ábc" < "émoji"); files by (new path, old path), closes links by
# (project, iid, id) with NULLs first; notes by (created_at, id); years before 1000 keep the
# unpadded form ms_to_iso gives them.
EXPECTED: dict[str, tuple[str, str, str | None] | None] = {
    "issue_full": (
        f"#1 {ISSUE_TITLE}",
        f"#1 {ISSUE_TITLE}\nProject: group/proj\nType: issue\nState: opened, confidential\nAuthor: @bob\n"
        "Assignees: @Zoë, @alice, @erin\nLabels: Browser, bug, zzz, ábc, émoji 🎉\nMilestone: v1.0\n"
        "Created: 2023-11-13\nClosed: 2023-11-14\nDue: 2024-01-31\n\nSteps:\n1. open\n2. crash",
        ISSUE_URL,
    ),
    "issue_bare": (
        "#2 Issue 2",
        "#2 Issue 2\nProject: group/proj\nType: issue\nState: opened\nCreated: 2023-11-13",
        "https://gitlab.example.com/group/proj/-/issues/2",
    ),
    "issue_blank_body_old_date": (
        "#3 Issue 3",
        "#3 Issue 3\nProject: group/proj\nType: issue\nState: opened\nAuthor: @bob\nAssignees: @alice\n"
        "Labels: bug\nCreated: 987-06-05T",
        "https://gitlab.example.com/group/proj/-/issues/3",
    ),
    "issue_doomed": None,
    "mr_many_files": (
        "!1 Fix Safari login",
        "!1 Fix Safari login\nProject: group/proj\nState: opened, draft\nAuthor: @bob\n"
        "Assignees: @Zoë, @alice, @erin\nReviewers: @alice, @carol\nLabels: C, a, b\n"
        "Branches: feature-1 -> main\nCreated: 2023-11-13\nMerged: 2023-11-14\n"
        "Closes: external issue 99001, #12, #1, #2, other/proj#7, 777#3\n"
        "Files changed: (107) added.py (new), gone.py (deleted), new/náme.py (renamed from old/name.py), "
        + ", ".join(f"src/f{n:03}.py" for n in range(MAX_LISTED_FILES - 3))
        + ", and 7 more\n\nBody of MR 1",
        MR_URL,
    ),
    "mr_exact_files": (
        "!2 MR 2",
        "!2 MR 2\nProject: group/proj\nState: opened\nCreated: 2023-11-13\nFiles changed: (100) "
        + ", ".join(f"d/{n:03}" for n in range(MAX_LISTED_FILES)),
        "https://gitlab.example.com/group/proj/-/merge_requests/2",
    ),
    "mr_plain": (
        "!3 MR 3",
        "!3 MR 3\nProject: group/proj\nState: opened\nAuthor: @bob\nAssignees: @alice\nReviewers: @carol\n"
        "Labels: feature\nBranches: feature-3 -> None\nCreated: 2023-11-13\n\nBody of MR 3",
        "https://gitlab.example.com/group/proj/-/merge_requests/3",
    ),
    "discussion_notes_unordered": (
        ON_ISSUE,
        f"{ON_ISSUE}\nProject: group/proj\n\n@user2 (2023-11-14 22:14): Repro on macOS — ünïcode ✓\n"
        "@user9 (2023-11-14 22:14): same minute, higher id\n@user2 (2023-11-14 22:18): later but lower id\n"
        "[system] @user2 (2023-11-14 22:20): changed the description",
        f"{ISSUE_URL}#note_11",
    ),
    "discussion_diffnotes_resolved": (
        ON_ISSUE,
        f"{ON_ISSUE}\nProject: group/proj\nResolved: yes\n\n"
        "@user2 (2023-11-14 22:13) on src/login.py:42: this line\n"
        "@user2 (2023-11-14 22:15) on src/other.py:3: resolved too",
        f"{ISSUE_URL}#note_21",
    ),
    "discussion_diffnotes_partly_resolved": (
        ON_ISSUE,
        f"{ON_ISSUE}\nProject: group/proj\nResolved: no\n\n@user2 (2023-11-14 22:13) on a.py:1: unresolved\n"
        "@user2 (2023-11-14 22:14) on a.py:2: resolved\n@user2 (2023-11-14 22:15): plain reply",
        f"{ISSUE_URL}#note_31",
    ),
    "discussion_system_no_author": (
        ON_ISSUE,
        f"{ON_ISSUE}\nProject: group/proj\n\n[system] @unknown (2023-11-14 22:13): system only",
        f"{ISSUE_URL}#note_41",
    ),
    "discussion_no_notes": None,
    "discussion_mr_old_line": (
        ON_MR,
        f"{ON_MR}\nProject: group/proj\nResolved: no\n\n@user2 (2023-11-14 22:13) on x.py:8: old side\n"
        "@user2 (2023-11-14 22:13) on y.py: file level",
        f"{MR_URL}#note_51",
    ),
    "discussion_mr_plain": (
        ON_MR,
        f"{ON_MR}\nProject: group/proj\n\n@user2 (2023-11-14 22:13): on the MR",
        f"{MR_URL}#note_61",
    ),
    "discussion_parent_gone": None,
}


def _plain(rendered: Rendered | None) -> tuple[str, str, str | None] | None:
    return None if rendered is None else (rendered.title, rendered.content, rendered.url)


def test_the_corpus_renders_to_exactly_the_documents_of_the_per_source_renderer(
    store_db: apsw.Connection, gl: Any, corpus: dict[str, SourceKey]
) -> None:
    assert set(corpus) == set(EXPECTED)
    batch = render_sources(store_db, list(corpus.values()))
    for name, key in corpus.items():
        assert _plain(batch[key]) == EXPECTED[name], name
        assert _plain(render_source(store_db, key)) == EXPECTED[name], name
        if EXPECTED[name] is not None:
            assert batch[key] is not None and batch[key].project_id == gl.project_id  # type: ignore[union-attr]


def test_one_batch_of_every_source_equals_rendering_each_alone(
    store_db: apsw.Connection, corpus: dict[str, SourceKey]
) -> None:
    keys = all_sources(store_db) + MISSING
    keys = keys[1::2] + keys[::-2] + keys[:3]  # interleaved kinds, reversed, with duplicates
    batch = render_sources(store_db, keys)
    assert list(batch) == list(dict.fromkeys(keys))  # every key once, in the order given
    assert batch == {key: render_source(store_db, key) for key in keys}
    rendered = [key for key, document in batch.items() if document is not None]
    assert len(rendered) == 12  # 14 sources (the parentless and the note-less discussions render None)


def test_missing_and_incomplete_sources_render_none(
    store_db: apsw.Connection, corpus: dict[str, SourceKey]
) -> None:
    gone = [*MISSING, corpus["issue_doomed"], corpus["discussion_parent_gone"], corpus["discussion_no_notes"]]
    assert render_sources(store_db, gone) == dict.fromkeys(gone)
    assert render_sources(store_db, []) == {}


def test_a_malformed_key_is_refused(store_db: apsw.Connection) -> None:
    with pytest.raises(LoreError) as raised:
        render_sources(store_db, [("issue", 1), ("project", 1)])
    assert raised.value.code == "INTERNAL"


def test_render_queries_do_not_grow_with_the_batch(
    store_db: apsw.Connection, corpus: dict[str, SourceKey]
) -> None:
    statements: list[str] = []

    def tracer(_cursor: apsw.Cursor, sql: str, _bindings: object) -> bool:
        statements.append(sql)
        return True

    keys = all_sources(store_db)
    one_of_each = [corpus["issue_full"], corpus["mr_plain"], corpus["discussion_mr_plain"]]
    counts = []
    for subset in (one_of_each, keys):
        statements.clear()
        store_db.exec_trace = tracer
        try:
            render_sources(store_db, subset)
        finally:
            store_db.exec_trace = None
        counts.append(len(statements))
    assert len(keys) == 14 and counts == [11, 11]  # one query per kind of row: 3 issue, 6 MR, 2 discussion


# Notes get their minute from SQLite where it formats exactly as Python's datetime; elsewhere
# (before 1970, or anything but an integer) Python formats it as it always did.
_MINUTE_EDGES = [0, 59_999, 60_000, 86_399_999, 951_782_400_000, 1_700_000_000_000, 253_402_300_799_999]
_PYTHON_ONLY = [-1, -60_000, -60_001, -2_208_988_800_000, -30_610_224_000_000]


def _note_minute(conn: apsw.Connection, key: SourceKey, created: object) -> str:
    with conn:
        conn.execute("UPDATE notes SET created_at = ? WHERE gitlab_id = 61", (created,))
    rendered = render_source(conn, key)
    assert rendered is not None
    return rendered.content.rsplit("@user2 (", 1)[1].split(")", 1)[0]


def _python_minute(ms: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(milliseconds=ms)).isoformat(" ", "minutes")


def test_note_minutes_match_python_at_the_edges(
    store_db: apsw.Connection, corpus: dict[str, SourceKey]
) -> None:
    key = corpus["discussion_mr_plain"]
    for ms in _MINUTE_EDGES + _PYTHON_ONLY:
        assert _note_minute(store_db, key, ms) == _python_minute(ms), ms
    assert _note_minute(store_db, key, 1_700_000_000_000.9) == _python_minute(1_700_000_000_000)  # a REAL
    year_987 = -31_007_059_200_000
    iso = ms_to_iso(year_987)  # "987-06-05T00:00:00.000Z": before 1000 the renderer cuts this form
    assert _note_minute(store_db, key, year_987) == f"{iso[:10]} {iso[11:16]}" == "987-06-05T 0:00:"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ms=st.integers(min_value=-30_610_224_000_000, max_value=253_402_300_799_999))
def test_note_minutes_match_python_anywhere(store_db: apsw.Connection, gl: Any, ms: int) -> None:
    if not store_db.execute("SELECT 1 FROM notes WHERE gitlab_id = 61").fetchone():
        with store_db:
            ingest_merge_request(store_db, gl.project_id, gl.mr(1), now_ms=gl.NOW)
            _discussions(store_db, gl, "mr", 50_001, [gl.discussion("g", gl.note(61, "on the MR"))])
    assert _note_minute(store_db, ("discussion", 1), ms) == _python_minute(ms)


names = st.text(min_size=1, max_size=5)
labels = st.lists(st.text(min_size=1, max_size=6), max_size=4, unique=True)
bodies = st.text(max_size=20)


@st.composite
def random_threads(draw: st.DrawFn, gl: Any, first_note: int) -> list[Any]:
    threads = []
    note_id = first_note
    for thread in range(draw(st.integers(0, 3))):
        notes = []
        for _ in range(draw(st.integers(0, 3))):
            note_id += 1
            minute = draw(st.integers(0, 3))
            if draw(st.booleans()):
                note = gl.diff_note(note_id, draw(bodies), draw(st.sampled_from(["a.py", "ü/b.py"])),
                                    draw(st.integers(1, 9)), minute=minute, resolved=draw(st.booleans()))
            else:
                note = gl.note(note_id, draw(bodies), minute=minute, system=draw(st.booleans()),
                               author=draw(st.integers(1, 3)))
            notes.append(note)
        threads.append(gl.discussion(f"{first_note}-{thread}", *notes))
    return threads


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_corpora_render_in_one_batch_as_each_source_alone(
    tmp_path_factory: Any, data: st.DataObject
) -> None:
    gl = Payloads()
    conn = open_connection(tmp_path_factory.mktemp("corpus") / "lore.db")
    try:
        migrate(conn)
        with conn:
            upsert_project(conn, gl.project(), now_ms=gl.T0)
            for iid in range(1, data.draw(st.integers(1, 4)) + 1):
                people = [{"id": n, "username": data.draw(names)} for n in range(1, 3)]
                ingest_issue(conn, gl.project_id, gl.issue(iid, labels=data.draw(labels), assignees=people),
                             now_ms=gl.NOW)
                _discussions(conn, gl, "issue", 10_000 + iid, data.draw(random_threads(gl, iid * 1000)))
            ingest_merge_request(conn, gl.project_id, gl.mr(1, labels=data.draw(labels)), now_ms=gl.NOW)
            files = data.draw(st.lists(st.text(min_size=1, max_size=4), max_size=5, unique=True))
            replace_mr_diffs(conn, mr_id=50_001, diffs=[gl.diff(path) for path in files])
            _discussions(conn, gl, "mr", 50_001, data.draw(random_threads(gl, 900_000)))
        keys = data.draw(st.permutations(all_sources(conn)))
        assert render_sources(conn, keys) == {key: render_source(conn, key) for key in keys}
    finally:
        conn.close()
