"""Shared fixtures for store tests: a migrated SQLite file and GitLab payload factories.

Payloads are built as JSON dicts, encoded to bytes and decoded into the real models, exactly as
the GitLab client hands them over (``Fetched(item, raw)``), so the raw bytes are real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import apsw
import msgspec
import pytest

from lore_daemon.gitlab.models import (
    ClosesIssue,
    Discussion,
    Fetched,
    Issue,
    LabelEvent,
    MergeRequest,
    MilestoneEvent,
    MrDiff,
    Project,
    StateEvent,
)
from lore_daemon.store import migrate, open_connection
from lore_daemon.store.entities import upsert_project
from lore_daemon.timeutil import ms_to_iso

PROJECT_ID = 100
PROJECT_PATH = "group/proj"
WEB = "https://gitlab.example.com/group/proj"
T0 = 1_700_000_000_000  # a fixed base instant (ms)

M = TypeVar("M")
PlanTracer = Callable[[apsw.Connection, Callable[[], object]], list[str]]


def _decode(data: dict[str, Any] | list[Any], model: type[M]) -> tuple[M, bytes]:
    raw = msgspec.json.encode(data)
    return msgspec.json.decode(raw, type=model), raw


def user(uid: int, username: str | None = None) -> dict[str, Any]:
    name = username or f"user{uid}"
    return {
        "id": uid,
        "username": name,
        "name": name.title(),
        "state": "active",
        "web_url": f"https://gitlab.example.com/{name}",
        "avatar_url": None,
    }


class Payloads:
    """Factories for GitLab payloads; every override is merged into the JSON dict."""

    project_id = PROJECT_ID
    T0 = T0
    NOW = T0 + 1_000_000  # a "local now", later than every payload's updated_at

    def project(self, **extra: Any) -> Project:
        data = {
            "id": PROJECT_ID,
            "path_with_namespace": PROJECT_PATH,
            "name": "proj",
            "web_url": WEB,
            "default_branch": "main",
            **extra,
        }
        return _decode(data, Project)[0]

    def issue_dict(self, iid: int, *, updated_ms: int = T0, **extra: Any) -> dict[str, Any]:
        return {
            "id": 10_000 + iid,
            "iid": iid,
            "project_id": PROJECT_ID,
            "title": f"Issue {iid}",
            "description": f"Body of issue {iid}",
            "state": "opened",
            "created_at": ms_to_iso(T0 - 86_400_000),
            "updated_at": ms_to_iso(updated_ms),
            "closed_at": None,
            "closed_by": None,
            "labels": ["bug"],
            "milestone": None,
            "assignees": [user(1, "alice")],
            "author": user(2, "bob"),
            "issue_type": "issue",
            "type": "ISSUE",
            "confidential": False,
            "due_date": None,
            "user_notes_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "web_url": f"{WEB}/-/issues/{iid}",
            **extra,
        }

    def issue(self, iid: int, *, updated_ms: int = T0, **extra: Any) -> Fetched[Issue]:
        return Fetched(*_decode(self.issue_dict(iid, updated_ms=updated_ms, **extra), Issue))

    def mr(self, iid: int, *, updated_ms: int = T0, **extra: Any) -> Fetched[MergeRequest]:
        data = {
            "id": 50_000 + iid,
            "iid": iid,
            "project_id": PROJECT_ID,
            "title": f"MR {iid}",
            "description": f"Body of MR {iid}",
            "state": "opened",
            "created_at": ms_to_iso(T0 - 86_400_000),
            "updated_at": ms_to_iso(updated_ms),
            "merged_at": None,
            "merged_by": None,
            "closed_at": None,
            "closed_by": None,
            "labels": ["feature"],
            "milestone": None,
            "assignees": [user(1, "alice")],
            "reviewers": [user(3, "carol")],
            "author": user(2, "bob"),
            "source_branch": f"feature-{iid}",
            "target_branch": "main",
            "source_project_id": PROJECT_ID,
            "target_project_id": PROJECT_ID,
            "draft": False,
            "work_in_progress": False,
            "sha": "a" * 40,
            "merge_commit_sha": None,
            "squash_commit_sha": None,
            "detailed_merge_status": "mergeable",
            "user_notes_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "web_url": f"{WEB}/-/merge_requests/{iid}",
            **extra,
        }
        return Fetched(*_decode(data, MergeRequest))

    def note(
        self, nid: int, body: str = "hello", *, author: int = 2, minute: int = 0, **extra: Any
    ) -> dict[str, Any]:
        at = ms_to_iso(T0 + minute * 60_000)
        return {
            "id": nid,
            "type": None,
            "body": body,
            "author": user(author),
            "created_at": at,
            "updated_at": at,
            "system": False,
            "resolvable": False,
            "resolved": False,
            **extra,
        }

    def diff_note(self, nid: int, body: str, path: str, line: int, **extra: Any) -> dict[str, Any]:
        position = {
            "base_sha": "b" * 40,
            "start_sha": "c" * 40,
            "head_sha": "d" * 40,
            "old_path": path,
            "new_path": path,
            "position_type": "text",
            "old_line": None,
            "new_line": line,
            "line_range": {
                "start": {"line_code": f"x_{line}_{line}", "type": "new", "old_line": None, "new_line": line}
            },
        }
        return self.note(nid, body, type="DiffNote", position=position, resolvable=True, **extra)

    def discussion(self, did: str, *notes: dict[str, Any], individual: bool = False) -> Discussion:
        data = {"id": did.ljust(40, "0"), "individual_note": individual, "notes": list(notes)}
        return _decode(data, Discussion)[0]

    def state_event(self, eid: int, state: str = "closed", *, minute: int = 0) -> StateEvent:
        return _decode(
            {"id": eid, "user": user(2), "created_at": ms_to_iso(T0 + minute * 60_000), "state": state},
            StateEvent,
        )[0]

    def label_event(self, eid: int, label: str = "bug", action: str = "add") -> LabelEvent:
        return _decode(
            {
                "id": eid,
                "user": user(2),
                "created_at": ms_to_iso(T0),
                "action": action,
                "label": {"id": 7, "name": label, "color": "#ff0000"},
            },
            LabelEvent,
        )[0]

    def milestone_event(self, eid: int, title: str = "v1", action: str = "add") -> MilestoneEvent:
        return _decode(
            {
                "id": eid,
                "user": None,
                "created_at": ms_to_iso(T0),
                "action": action,
                "milestone": {"id": 9, "iid": 1, "title": title},
            },
            MilestoneEvent,
        )[0]

    def closes(self, *iids: int, project_id: int = PROJECT_ID) -> list[ClosesIssue]:
        return [
            _decode(
                {"id": 10_000 + iid, "iid": iid, "project_id": project_id, "title": f"Issue {iid}"},
                ClosesIssue,
            )[0]
            for iid in iids
        ]

    def diff(self, old: str, new: str | None = None, **flags: bool) -> MrDiff:
        return _decode({"old_path": old, "new_path": new or old, "diff": "@@ -1 +1 @@", **flags}, MrDiff)[0]


@pytest.fixture
def gl() -> Payloads:
    return Payloads()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[apsw.Connection]:
    """A migrated, empty database file; the writer connection (IMMEDIATE). Test modules that need
    something else define their own ``conn``."""
    connection = open_connection(tmp_path / "lore.db")
    migrate(connection)
    yield connection
    connection.close()


@pytest.fixture
def store_db(tmp_path: Path, gl: Payloads) -> Iterator[apsw.Connection]:
    """A migrated database file holding the test project; the writer connection (IMMEDIATE)."""
    conn = open_connection(tmp_path / "lore.db")
    migrate(conn)
    with conn:
        upsert_project(conn, gl.project(), now_ms=T0)
    yield conn
    conn.close()


def _traced_plans(conn: apsw.Connection, call: Callable[[], object]) -> list[str]:
    """The query plans of the SELECTs ``call`` runs (captured with apsw's statement tracer)."""
    statements: list[tuple[str, object]] = []

    def tracer(_cursor: apsw.Cursor, sql: str, bindings: object) -> bool:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, bindings))
        return True

    conn.exec_trace = tracer
    try:
        call()
    finally:
        conn.exec_trace = None
    plans = []
    for sql, bindings in statements:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, bindings).fetchall()  # type: ignore[arg-type]
        plans.append(" | ".join(str(r[-1]) for r in rows))
    return plans


@pytest.fixture
def traced_plans() -> PlanTracer:
    """``traced_plans(conn, call)``: the query plans of the SELECTs ``call`` runs."""
    return _traced_plans
