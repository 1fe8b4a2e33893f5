"""Fixtures for surgical-sync tests: a real simulator on loopback, a real SQLite file, a real Engine.

The engine is assembled from the same parts the daemon uses (``load_config`` on a TOML file in
``tmp_path``, ``Database``, ``GitLabClient`` against the simulator); only the retry policy is
tightened so 5xx storms give up in milliseconds instead of seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import apsw
import pytest

from lore_daemon import protocol
from lore_daemon.embedding.provider import Provider
from lore_daemon.engine import Engine
from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.store import ledger
from tests.support import config as support_config
from tests.support.config import EMBEDDING_OFF, TEST_SYNC
from tests.support.engine import build_engine as build_support_engine
from tests.support.sim import sim_fixture

PROJECT = "group/project"
TOKEN_ENV = "LORE_SURGICAL_TEST_TOKEN"
SIM_CONFIG = SimConfig(seed=7, issues=30, mrs=12, notes_per_entity=4)

# Every table a run can fill with mirrored content (the ledger and locks are not content).
CONTENT_TABLES = (
    "projects",
    "users",
    "milestones",
    "raw_payloads",
    "issues",
    "issue_labels",
    "issue_assignees",
    "merge_requests",
    "mr_labels",
    "mr_assignees",
    "mr_reviewers",
    "discussions",
    "notes",
    "resource_state_events",
    "resource_label_events",
    "resource_milestone_events",
    "entity_references",
    "mr_file_changes",
    "documents",
    "dirty_sources",
    "embeddings",
    "pending_dependent_fetches",
    "sync_cursors",
)


def write_config(
    tmp_path: Path, base_url: str, *, projects: tuple[str, ...] = (PROJECT,),
    embedding: str = EMBEDDING_OFF, **sync: int,
) -> Path:
    return support_config.write_config(
        tmp_path, base_url, token_env=TOKEN_ENV, projects=projects, db_path=tmp_path / "lore.db",
        sync={**TEST_SYNC, **sync}, embedding=embedding,
    )


def build_engine(
    tmp_path: Path, sim: SimServer, *, projects: tuple[str, ...] = (PROJECT,),
    embedding: str = EMBEDDING_OFF, provider: Provider | None = None, **sync: int,
) -> Engine:
    """An Engine exactly as the daemon builds one, against the simulator. ``embedding`` is the
    ``[embedding]`` table; ``provider`` hands in an already loaded model (the session's)."""
    env = {TOKEN_ENV: sim.token, "HOME": str(tmp_path)}
    return build_support_engine(
        write_config(tmp_path, sim.base_url, projects=projects, embedding=embedding, **sync), env,
        provider=provider,
    )


sim = sim_fixture(SIM_CONFIG)


@pytest.fixture
async def engine(tmp_path: Path, sim: SimServer) -> AsyncIterator[Engine]:
    built = build_engine(tmp_path, sim)
    try:
        yield built
    finally:
        await built.aclose()


def connect(path: Path) -> apsw.Connection:
    """A separate connection (another "process" as far as SQLite is concerned)."""
    conn = apsw.Connection(str(path))
    conn.set_busy_timeout(5000)
    return conn


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    conn = connect(path)
    try:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        conn.close()


def content_snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {table: rows(path, table) for table in CONTENT_TABLES}


def surgical(**fields: Any) -> protocol.SyncSurgicalParams:
    fields.setdefault("project", PROJECT)
    return protocol.SyncSurgicalParams(**fields)


def stored_run(db_path: Path, run_id: str | None) -> protocol.SyncRun:
    """The ledger row of ``run_id`` as the daemon would report it (it must exist)."""
    conn = connect(db_path)
    try:
        run = ledger.get_run(conn, run_id or "")
    finally:
        conn.close()
    assert run is not None
    return run
