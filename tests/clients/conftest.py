"""Fixtures for the client tests: a simulator on loopback and an environment that points a
daemon at it (config file, token variable, database path in tmp, and a private shared-daemon
socket that is stopped when the test ends — no test leaves a background daemon behind)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lore_client.shared import stop_daemon
from lore_daemon.sim import SimConfig, SimServer
from tests.support.config import write_config
from tests.support.sim import sim_fixture

PROJECT = "group/project"
TOKEN_ENV = "LORE_TEST_TOKEN"


@dataclass
class ClientEnv:
    sim: SimServer
    env: dict[str, str]
    db_path: Path
    config_path: Path
    socket_path: Path

    def lore(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "lore_client.bridge", *args]


sim = sim_fixture(SimConfig(seed=11, issues=40, mrs=12, notes_per_entity=4), scope="module")


@pytest.fixture
def client_env(sim: SimServer, tmp_path: Path) -> Iterator[ClientEnv]:
    db_path = tmp_path / "lore.db"
    config_path = write_config(
        tmp_path, sim.base_url, token_env=TOKEN_ENV, projects=(PROJECT,), db_path=db_path
    )
    # A short socket path (AF_UNIX allows ~100 bytes, tmp_path can be longer); whatever daemon
    # serves it is stopped when the test ends.
    socket_dir = Path(tempfile.mkdtemp(prefix="lore-sock-"))
    socket_path = socket_dir / "run" / "daemon.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env.update(LORE_CONFIG_PATH=str(config_path), LORE_SOCKET=str(socket_path), **{TOKEN_ENV: sim.token})
    sim.control.clear_faults()
    try:
        yield ClientEnv(sim=sim, env=env, db_path=db_path, config_path=config_path, socket_path=socket_path)
    finally:
        stop_daemon(socket_path)
        shutil.rmtree(socket_dir, ignore_errors=True)
