"""The simulator fixture, declared once: ``sim = sim_fixture(SimConfig(...))`` in a conftest or a
test module gives that scope a ``sim`` fixture serving a fresh simulator on loopback (real HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from lore_daemon.sim import SimConfig, SimServer

Scope = Literal["function", "module", "session"]


def sim_fixture(config: SimConfig, *, scope: Scope = "function", name: str = "sim") -> Callable[..., Any]:
    """A fixture (``sim`` unless ``name``): a ``SimServer`` with ``config``, started for each
    ``scope``, stopped after."""

    @pytest.fixture(scope=scope, name=name)
    def _sim() -> Iterator[SimServer]:
        with SimServer(config) as server:
            yield server

    return _sim
