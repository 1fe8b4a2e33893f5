"""A faithful GitLab REST v4 simulator on loopback, for the demo, the tests and the benchmarks.

Public API: ``SimConfig`` (the seeded data set and knobs), ``SimServer`` (runs it in a background
thread), ``SimControl`` (the ``/_sim/`` control API client). CLI: ``python -m lore_daemon.sim``.
See docs/simulator.md.
"""

from lore_daemon.sim.config import SimConfig
from lore_daemon.sim.control import SimControl
from lore_daemon.sim.server import SimServer

__all__ = ["SimConfig", "SimControl", "SimServer"]
