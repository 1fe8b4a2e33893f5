"""Fixtures of the read-method tests: per module a simulator and a mirror of both its projects;
per test a copy of that mirror and a daemon environment pointing at it (token in the environment,
only ``group/project`` configured)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from lore_daemon.sim import SimConfig, SimServer
from tests.daemon.conftest import clients  # noqa: F401 (the daemon suite's fixture, shared)
from tests.daemon.support import DaemonEnv, RawDaemon, new_daemon_env

from .support import PROJECT, build_mirror, copy_mirror

READ_SIM = SimConfig(seed=21, issues=60, mrs=20, notes_per_entity=4)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(READ_SIM) as server:
        yield server


@pytest.fixture(scope="module")
def mirror(sim: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return asyncio.run(build_mirror(tmp_path_factory.mktemp("mirror"), sim))


def _env(folder: Path, sim: SimServer, mirror: Path) -> DaemonEnv:
    denv = new_daemon_env(folder)
    # The mirror holds both projects; only the first is configured, so a bare #12 means it.
    denv.write_config(base_url=sim.base_url, projects=(PROJECT,))
    copy_mirror(mirror, denv.db_path)
    sim.control.clear_faults()
    sim.control.set_latency(0)
    return denv.with_token(sim.token)


@pytest.fixture
def env(tmp_path: Path, sim: SimServer, mirror: Path) -> DaemonEnv:
    return _env(tmp_path, sim, mirror)


@pytest.fixture(scope="module")
def reader(sim: SimServer, mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawDaemon]:
    """One daemon per module on its own copy of the mirror, for tests that only read (each
    checks the daemon keeps serving); answers are plain JSON-RPC response dicts."""
    daemon = RawDaemon(_env(tmp_path_factory.mktemp("reader"), sim, mirror))
    try:
        daemon.initialize()
        yield daemon
    finally:
        daemon.close()


