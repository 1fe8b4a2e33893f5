"""`make demo` runs `python -m lore_client.demo`: simulator, daemon and bridge, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_every_step_with_the_documented_exit_codes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    proc = subprocess.run([sys.executable, "-m", "lore_client.demo"], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.findall(r"\(exit code (\d+)\)", proc.stdout) == ["0", "5", "0", "0", "0", "0", "0"]
    assert '"code": "GITLAB_NOT_FOUND"' in proc.stdout          # the aggregated failure
    assert '"kind": "checkTarget"' in proc.stdout              # ... and its recovery action
    assert "[docs:end]" in proc.stdout                          # progress was printed
    assert '"outcome": "wouldSync"' in proc.stdout              # the dry run
    assert '"provider": "local"' in proc.stdout and '"state": "ready"' in proc.stdout  # embeddings on
