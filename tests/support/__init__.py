"""Shared test scaffolding (docs/architecture.md, "Tests"): one simulator fixture factory
(``sim.sim_fixture``), one config writer (``config.write_config``), one engine builder
(``engine.build_engine``) and one polling helper (``wait.wait_until`` / ``wait.wait_until_async``).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the repository root (child processes run from it)
