"""Fixtures for standard-sync tests: a small simulator on loopback (in-process, real HTTP), a
config file and a real SQLite file in ``tmp_path``, and engines built from them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lore_daemon.engine import Engine
from lore_daemon.gitlab._retry import RetryPolicy
from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.tuning import Tuning
from tests.support.sim import sim_fixture

from .support import FAST_RETRY, build_engine, write_config

SMALL = SimConfig(seed=5, issues=60, mrs=20, notes_per_entity=4)


sim = sim_fixture(SMALL)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "lore.db"


EngineFactory = Callable[..., Engine]


@pytest.fixture
async def make_engine(tmp_path: Path, sim: SimServer) -> AsyncIterator[EngineFactory]:
    """``make_engine(retry=..., tuning=..., **sync_settings)``: engines on the same DB file, closed
    at teardown."""
    built: list[Engine] = []

    def make(retry: RetryPolicy = FAST_RETRY, tuning: Tuning | None = None, **sync: int) -> Engine:
        config = write_config(tmp_path, sim.base_url, **sync)
        engine = build_engine(config, sim.token, retry=retry, tuning=tuning)
        built.append(engine)
        return engine

    yield make
    for engine in built:
        await engine.aclose()
