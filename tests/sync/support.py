"""Helpers for standard-sync tests: engines built like the daemon builds them, the simulator in a
separate process, and the two checks every test leans on — "the store equals the simulator's
truth" and "nothing is half-written"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import apsw

from lore_daemon.engine import Engine
from lore_daemon.gitlab._retry import RetryPolicy
from lore_daemon.sim import SimControl
from lore_daemon.timeutil import iso_to_ms
from lore_daemon.tuning import Tuning
from tests.support import REPO
from tests.support import config as support_config
from tests.support import engine as support_engine
from tests.support.config import TEST_SYNC
from tests.support.engine import FAST_RETRY

PROJECT = "group/project"
TOKEN_ENV = "LORE_STANDARD_TEST_TOKEN"


def write_config(tmp_path: Path, base_url: str, db_path: Path | None = None, **sync: int) -> Path:
    return support_config.write_config(
        tmp_path, base_url, token_env=TOKEN_ENV, projects=(PROJECT,), db_path=db_path or tmp_path / "lore.db",
        sync={**TEST_SYNC, **sync},
    )


def build_engine(
    config_path: Path, token: str, *, retry: RetryPolicy = FAST_RETRY, tuning: Tuning | None = None
) -> Engine:
    """An Engine assembled from the daemon's own parts; only the retry policy is tightened."""
    env = {TOKEN_ENV: token, "HOME": str(config_path.parent)}
    return support_engine.build_engine(config_path, env, retry=retry, tuning=tuning)


class SimProcess:
    """``python -m lore_daemon.sim`` in its own process (so it does not share our GIL)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lore_daemon.sim", "--port", "0", *args],
            stdout=subprocess.PIPE, cwd=REPO,
        )
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.base_url: str = info["base_url"]
        self.token: str = info["token"]
        self.control = SimControl(self.base_url)

    def close(self) -> None:
        self.control.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def connect(path: Path) -> apsw.Connection:
    """An independent connection (as another process would open it)."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(5000)
    return conn


def scalar(path: Path, sql: str, *args: Any) -> Any:
    conn = connect(path)
    try:
        row = conn.execute(sql, args).fetchone()
        return None if row is None else row[0]
    finally:
        conn.close()


def integrity_ok(path: Path) -> bool:
    return scalar(path, "PRAGMA integrity_check") == "ok"


# ----------------------------------------------------------------------------- nothing half-written


def assert_consistent(path: Path) -> None:
    """Every stored item is whole: an issue/MR row has exactly the labels, assignees and reviewers
    of the payload it was written from, every discussion has its notes, no job is left claimed,
    and the cursors never cover an item that is not stored."""
    conn = connect(path)
    try:
        for table, link_sql in (
            ("issues", ["SELECT label FROM issue_labels WHERE issue_id = ?",
                        "SELECT user_id FROM issue_assignees WHERE issue_id = ?"]),
            ("merge_requests", ["SELECT label FROM mr_labels WHERE merge_request_id = ?",
                                "SELECT user_id FROM mr_assignees WHERE merge_request_id = ?",
                                "SELECT user_id FROM mr_reviewers WHERE merge_request_id = ?"]),
        ):
            rows = conn.execute(
                f"SELECT e.gitlab_id, r.payload FROM {table} AS e "
                "JOIN raw_payloads AS r ON r.id = e.raw_payload_id"
            ).fetchall()
            assert len(rows) == conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for gitlab_id, payload in rows:
                item = json.loads(payload)
                expected = [
                    sorted(item["labels"]),
                    sorted(u["id"] for u in item["assignees"]),
                    sorted(u["id"] for u in item.get("reviewers", [])),
                ]
                for want, sql in zip(expected, link_sql, strict=False):
                    assert sorted(r[0] for r in conn.execute(sql, (gitlab_id,))) == want, (table, gitlab_id)
        empty = conn.execute(
            "SELECT count(*) FROM discussions AS d "
            "WHERE NOT EXISTS (SELECT 1 FROM notes WHERE discussion_id = d.id)"
        ).fetchone()[0]
        assert empty == 0, "a discussion without its notes"
        claimed = conn.execute(
            "SELECT count(*) FROM pending_dependent_fetches WHERE locked_by IS NOT NULL"
        ).fetchone()[0]
        assert claimed == 0, "a job left claimed"
        for resource, table in (("issues", "issues"), ("merge_requests", "merge_requests")):
            cursor = conn.execute(
                "SELECT updated_at, gitlab_id FROM sync_cursors WHERE resource = ?", (resource,)
            ).fetchone()
            if cursor is not None:
                newest = conn.execute(
                    f"SELECT max(updated_at) FROM {table}"
                ).fetchone()[0]
                assert newest is not None and cursor[0] <= newest
    finally:
        conn.close()


# ---------------------------------------------------------------------------------- against truth


def _ms(value: str | None) -> int | None:
    return None if value is None else iso_to_ms(value)


def _rows(conn: apsw.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql, args)]


def assert_matches_truth(path: Path, dump: dict[str, Any], *, sample_every: int = 7) -> None:
    """The store holds exactly the simulator's project: same entities, same counts of every
    dependent, and field-by-field equality for a sample of issues, MRs and notes."""
    conn = connect(path)
    try:
        issues = {i["id"]: i for i in dump["issues"]}
        mrs = {m["id"]: m for m in dump["merge_requests"]}
        assert {r[0] for r in _rows(conn, "SELECT gitlab_id FROM issues")} == set(issues)
        assert {r[0] for r in _rows(conn, "SELECT gitlab_id FROM merge_requests")} == set(mrs)

        discussions = [d for kind in ("issues", "merge_requests") for ds in dump["discussions"][kind].values()
                       for d in ds]
        notes = {n["id"]: n for d in discussions for n in d["notes"]}
        assert scalar(path, "SELECT count(*) FROM discussions") == len(discussions)
        assert {r[0] for r in _rows(conn, "SELECT gitlab_id FROM notes")} == set(notes)
        for kind, table in (("state", "resource_state_events"), ("label", "resource_label_events"),
                            ("milestone", "resource_milestone_events")):
            want = {e["id"] for k in ("issues", "merge_requests") for per in dump["events"][k].values()
                    for e in per[kind]}
            got = {r[0] for r in _rows(conn, f"SELECT gitlab_id FROM {table}")}
            assert got == want, table
        closes = {(mrs_by_iid_id(dump, int(iid)), i["id"]) for iid, items in dump["closes_issues"].items()
                  for i in items}
        got_closes = set(_rows(conn, "SELECT source_id, target_id FROM entity_references "
                                     "WHERE reference_type = 'closes'"))
        assert got_closes == closes
        diffs = {(mrs_by_iid_id(dump, int(iid)), f["old_path"], f["new_path"])
                 for iid, files in dump["diffs"].items() for f in files}
        assert set(_rows(conn, "SELECT merge_request_id, old_path, new_path FROM mr_file_changes")) == diffs

        for gitlab_id in sorted(issues)[::sample_every]:
            _compare_entity(conn, "issues", "issue_labels", "issue_id", issues[gitlab_id])
        for gitlab_id in sorted(mrs)[::sample_every]:
            _compare_entity(conn, "merge_requests", "mr_labels", "merge_request_id", mrs[gitlab_id])
        for note_id in sorted(notes)[::sample_every]:
            _compare_note(conn, notes[note_id])
        documents = scalar(path, "SELECT count(*) FROM documents")
        assert documents == len(issues) + len(mrs) + len(discussions)
        assert scalar(path, "SELECT count(*) FROM dirty_sources") == 0
    finally:
        conn.close()


def mrs_by_iid_id(dump: dict[str, Any], iid: int) -> int:
    return next(m["id"] for m in dump["merge_requests"] if m["iid"] == iid)


def _compare_entity(conn: apsw.Connection, table: str, labels: str, fk: str, item: dict[str, Any]) -> None:
    row = conn.execute(
        f"SELECT iid, title, description, state, web_url, created_at, updated_at, closed_at, "
        f"author_id, milestone_id, upvotes, downvotes, user_notes_count FROM {table} WHERE gitlab_id = ?",
        (item["id"],),
    ).fetchone()
    author = item.get("author") or {}
    milestone = item.get("milestone") or {}
    assert tuple(row) == (
        item["iid"], item["title"], item.get("description"), item["state"], item["web_url"],
        iso_to_ms(item["created_at"]), iso_to_ms(item["updated_at"]), _ms(item.get("closed_at")),
        author.get("id"), milestone.get("id"), item.get("upvotes", 0), item.get("downvotes", 0),
        item.get("user_notes_count", 0),
    ), (table, item["iid"])
    got_labels = sorted(r[0] for r in conn.execute(
        f"SELECT label FROM {labels} WHERE {fk} = ?", (item["id"],)
    ))
    assert got_labels == sorted(item["labels"])
    if table == "merge_requests":
        mr = conn.execute(
            "SELECT source_branch, target_branch, draft, sha, merged_at FROM merge_requests "
            "WHERE gitlab_id = ?",
            (item["id"],),
        ).fetchone()
        assert tuple(mr) == (
            item.get("source_branch"), item.get("target_branch"), int(bool(item.get("draft"))),
            item.get("sha"), _ms(item.get("merged_at")),
        )
        reviewers = sorted(r[0] for r in conn.execute(
            "SELECT user_id FROM mr_reviewers WHERE merge_request_id = ?", (item["id"],)))
        assert reviewers == sorted(u["id"] for u in item.get("reviewers", []))


def _compare_note(conn: apsw.Connection, note: dict[str, Any]) -> None:
    row = conn.execute(
        "SELECT body, author_id, system, note_type, created_at, position_new_path FROM notes "
        "WHERE gitlab_id = ?",
        (note["id"],),
    ).fetchone()
    position = note.get("position") or {}
    assert tuple(row) == (
        note["body"], (note.get("author") or {}).get("id"), int(note["system"]), note.get("type"),
        iso_to_ms(note["created_at"]), position.get("new_path"),
    ), note["id"]


def env_for_child(token: str) -> dict[str, str]:
    env = dict(os.environ)
    env[TOKEN_ENV] = token
    return env
