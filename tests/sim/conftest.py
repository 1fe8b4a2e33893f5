"""Fixtures: a real simulator on loopback per test (it starts in milliseconds) and HTTP clients."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lore_daemon.sim import SimConfig, SimServer
from tests.support.sim import sim_fixture

SMALL = SimConfig(seed=3, issues=60, mrs=20, notes_per_entity=6)


sim = sim_fixture(SMALL)


@pytest.fixture
def api(sim: SimServer) -> Iterator[httpx.Client]:
    """An authenticated client rooted at /api/v4 (no redirects followed, no proxies)."""
    with httpx.Client(
        base_url=f"{sim.base_url}/api/v4", headers={"PRIVATE-TOKEN": sim.token}, trust_env=False, timeout=10
    ) as client:
        yield client


@pytest.fixture
def raw(sim: SimServer) -> Iterator[httpx.Client]:
    """An unauthenticated client rooted at the simulator's base URL."""
    with httpx.Client(base_url=sim.base_url, trust_env=False, timeout=10) as client:
        yield client
