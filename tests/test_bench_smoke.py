"""Every benchmark under tests/bench/ still runs: each at a tiny size, all at once (their figures
are meaningless at these sizes and are not looked at; `make bench` is where figures come from)."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

BENCH = REPO / "tests" / "bench"
# Each benchmark's tiny-size arguments, and a line its report must contain.
SMOKE_RUNS: dict[str, tuple[list[str], str]] = {
    "embed_throughput.py": (["--smoke", "--latency-ms", "5"], "filtered_rank_ms"),
    "gitlab_lanes.py": (["--latency-ms", "5", "--background", "20", "--samples", "2"], "ratio of medians"),
    "ingest_ceiling.py": (["200"], "ingest_issue (new)"),
    "protocol_latency.py": (["--smoke"], "warm lore/syncRuns limit=20"),
    "read_latency.py": (["--smoke"], "warm lore/get (discussions, links)"),
    "search_quality_semantic.py": (["--smoke"], "| all |"),
    "sim_throughput.py": (["--seconds", "0.2", "--issues", "5000", "--connections", "2"], "GET one issue"),
    "standard_sync.py": (["--sizes", "40", "--notes", "2"], "replay vs live rows: IDENTICAL"),
    "surgical_latency.py": (["5", "--smoke"], "speed-up of concurrency 8 over 1"),
}


def test_every_benchmark_has_a_smoke_run() -> None:
    assert sorted(p.name for p in BENCH.glob("[!_]*.py")) == sorted(SMOKE_RUNS)


def test_every_benchmark_runs_at_a_tiny_size() -> None:
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(BENCH / name), *args], cwd=REPO, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for name, (args, _) in SMOKE_RUNS.items()
    }
    failures = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        marker = SMOKE_RUNS[name][1]
        if proc.returncode != 0 or marker not in out:
            failures[name] = f"exit {proc.returncode}; stdout {out[-500:]!r}; stderr {err[-1500:]!r}"
    assert failures == {}


