"""Micro-benchmark: ``ingest_issue`` throughput vs the raw apsw ``executemany`` ceiling.

Prints issues/s for (1) full ingest of N synthetic issues (raw payload, users, labels, assignees,
dirty mark, two dependent jobs — one transaction per 100-item page, like a listing page),
(2) re-ingest of the same payloads (the "unchanged" path), and (3) a bare ``executemany`` of the
same issue rows into ``issues`` in one transaction: the ceiling nothing in Python can beat.
Figures only; nothing is asserted.

    .venv/bin/python tests/bench/ingest_ceiling.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from lore_daemon.gitlab.models import Fetched, Issue, Project
from lore_daemon.store import migrate, open_connection
from lore_daemon.store.entities import ingest_issue, upsert_project
from lore_daemon.store.entity_sql import ISSUE_SQL, issue_row
from lore_daemon.timeutil import ms_to_iso

PROJECT_ID = 1
T0 = 1_700_000_000_000
PAGE = 100


def synthetic(n: int) -> list[Fetched[Issue]]:
    out = []
    for i in range(1, n + 1):
        data: dict[str, Any] = {
            "id": 1_000_000 + i,
            "iid": i,
            "project_id": PROJECT_ID,
            "title": f"Synthetic issue {i}",
            "description": "Steps to reproduce:\n1. open the page\n2. click login\n" * 3,
            "state": "opened" if i % 3 else "closed",
            "created_at": ms_to_iso(T0 - i * 1000),
            "updated_at": ms_to_iso(T0 + i * 1000),
            "labels": ["bug", f"area::{i % 7}"],
            "assignees": [{"id": i % 50 + 1, "username": f"user{i % 50 + 1}"}],
            "author": {"id": i % 30 + 100, "username": f"author{i % 30}"},
            "web_url": f"https://gitlab.example.com/g/p/-/issues/{i}",
        }
        raw = msgspec.json.encode(data)
        out.append(Fetched(msgspec.json.decode(raw, type=Issue), raw))
    return out


def fresh_db(directory: Path, name: str) -> Any:
    conn = open_connection(directory / name)
    migrate(conn)
    project = Project(id=PROJECT_ID, path_with_namespace="g/p", web_url="https://gitlab.example.com/g/p")
    with conn:
        upsert_project(conn, project, now_ms=T0)
    return conn


def time_ingest(conn: Any, issues: list[Fetched[Issue]]) -> float:
    start = time.perf_counter()
    for page in range(0, len(issues), PAGE):
        with conn:
            for fetched in issues[page : page + PAGE]:
                ingest_issue(conn, PROJECT_ID, fetched, now_ms=T0 + 10_000_000)
    return time.perf_counter() - start


def time_ceiling(conn: Any, issues: list[Fetched[Issue]]) -> float:
    # Same issue rows, no users/links/payloads (author ids are nullable FKs: drop them to NULL).
    rows = [
        issue_row(fetched.item, PROJECT_ID, None, T0)._replace(author_id=None)
        for fetched in issues
    ]
    insert = ISSUE_SQL.upsert.sql.split("ON CONFLICT")[0]
    start = time.perf_counter()
    with conn:
        conn.executemany(insert, rows)
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    issues = synthetic(n)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        conn = fresh_db(directory, "ingest.db")
        full = time_ingest(conn, issues)
        again = time_ingest(conn, issues)
        conn.close()
        ceiling_conn = fresh_db(directory, "ceiling.db")
        ceiling = time_ceiling(ceiling_conn, issues)
        ceiling_conn.close()
    print(f"{n} synthetic issues, one transaction per {PAGE}-item page (ingest) / one executemany (ceiling)")
    print(f"{'path':<34}{'seconds':>10}{'issues/s':>14}")
    for label, secs in (
        ("ingest_issue (new)", full),
        ("ingest_issue (unchanged re-ingest)", again),
        ("raw executemany INSERT (ceiling)", ceiling),
    ):
        print(f"{label:<34}{secs:>10.3f}{n / secs:>14,.0f}")
    print(f"ingest is {ceiling and full / ceiling:.1f}x the ceiling's time")


if __name__ == "__main__":
    main()
