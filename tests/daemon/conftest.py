"""Fixtures for the daemon's end-to-end tests (helpers live in ``support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from .support import ClientPool, DaemonEnv, RawDaemon, new_daemon_env


@pytest.fixture
def daemon_env(tmp_path: Path) -> DaemonEnv:
    return new_daemon_env(tmp_path)


@pytest.fixture
async def clients() -> AsyncIterator[ClientPool]:
    pool = ClientPool()
    try:
        yield pool
    finally:
        await pool.close_all()


@pytest.fixture
def raw_daemon(daemon_env: DaemonEnv) -> Iterator[RawDaemon]:
    daemon = RawDaemon(daemon_env)
    try:
        yield daemon
    finally:
        daemon.close()



@pytest.fixture(scope="module")
def shared_raw_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawDaemon]:
    """One daemon for a whole module of tests that each leave it serving (they check that)."""
    daemon = RawDaemon(new_daemon_env(tmp_path_factory.mktemp("shared")))
    try:
        yield daemon
    finally:
        daemon.close()
