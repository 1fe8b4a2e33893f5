"""Helpers for the read-method tests: a mirror synced once per module, copied per test.

The mirror is built by a real standard sync (an ``Engine`` assembled as the daemon does) from the
module's simulator into a real SQLite file; each test copies that file and starts the daemon as a
subprocess over stdio on its copy, so tests that sync (read-through) or write never disturb the
others.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw

from lore_daemon import protocol
from lore_daemon.sim import SimServer
from tests.support.config import write_config
from tests.support.engine import build_engine

PROJECT = "group/project"
OTHER = "group/sub/other"
PROJECTS = (PROJECT, OTHER)
TOKEN_ENV = "LORE_READ_TEST_TOKEN"


async def build_mirror(folder: Path, sim: SimServer) -> Path:
    """A standard sync of both simulator projects into ``folder/lore.db``; returns its path."""
    from lore_daemon.sync.standard import run_standard_sync

    env = {TOKEN_ENV: sim.token, "HOME": str(folder)}
    config = write_config(
        folder, sim.base_url, token_env=TOKEN_ENV, projects=PROJECTS, db_path=folder / "lore.db"
    )
    engine = build_engine(config, env)
    try:
        result = await run_standard_sync(engine, protocol.SyncParams())
    finally:
        await engine.aclose()  # closing the last connection checkpoints the WAL into the file
    assert result.status == "succeeded", result
    return engine.config.db_path


def copy_mirror(mirror: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mirror, target)
    return target


def query(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows from a separate read-only connection (as another process would see them)."""
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(row) for row in conn.execute(sql, args)]
    finally:
        conn.close()


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


def api_requests(entries: list[dict[str, Any]]) -> list[str]:
    """``METHOD path`` of each logged API request."""
    return [f"{e['method']} {e['path']}" for e in entries]
