"""Surgical sync latency on a warm engine against a slow GitLab (prints figures; asserts nothing).

The simulator runs in its own process with L ms added to every API request. For each scenario a
warm engine (database open, HTTP connections established by a warm-up run) syncs entities it has
never seen, so every run takes the full ``ingested`` path: preflight, ingest, all dependents,
documents, embed (skipped: provider "none"). Figures:

* wall time of 1 issue, against the target 2·L + 50 ms (project, then issue ∥ its dependents);
* wall time of 10 issues + 10 MRs with all dependents, at the configured concurrency and at 1,
  each beside the bound ceil(requests / concurrency) · L computed from the simulator's request log
  (target: within 1.3x the bound at concurrency 8).

Run: ``.venv/bin/python tests/bench/surgical_latency.py [L_ms] [--smoke]`` (or ``make bench``);
``--smoke`` runs each scenario once (tests/test_bench_smoke.py: the figures are then meaningless).
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lore_daemon import protocol
from lore_daemon.config import load_config, read_token
from lore_daemon.engine import Engine
from lore_daemon.sim import SimControl
from lore_daemon.store.connection import Database
from lore_daemon.sync.locking import make_owner
from lore_daemon.sync.surgical import run_surgical_sync

PROJECT = "group/project"
TOKEN_ENV = "LORE_BENCH_TOKEN"


def start_simulator(latency_ms: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon.sim", "--issues", "120", "--mrs", "80", "--notes-per-entity", "6",
         "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def build_engine(workdir: Path, sim: dict[str, Any], concurrency: int) -> Engine:
    config_path = workdir / f"config-{concurrency}.toml"
    config_path.write_text(
        f'[gitlab]\nbase_url = "{sim["base_url"]}"\ntoken_env = "{TOKEN_ENV}"\n'
        f'[[projects]]\npath = "{PROJECT}"\n[storage]\ndb_path = "{workdir / f"lore-{concurrency}.db"}"\n'
        f"[sync]\nprimary_concurrency = {concurrency}\n"
        '[embedding]\nprovider = "none"\n'  # embedding is measured by embed_throughput.py
    )
    env = {TOKEN_ENV: sim["token"]}
    config = load_config(config_path, env=env)
    db = Database(config.db_path)
    db.open()
    return Engine.create(config, db, read_token(config, env).reveal(), owner=make_owner())


async def timed_run(
    engine: Engine, control: SimControl, issues: list[int], mrs: list[int]
) -> tuple[float, int, protocol.SyncResult]:
    """Wall ms of one surgical run, the API requests it made (from the simulator's log), its result."""
    control.clear_log()
    started = time.perf_counter()
    params = protocol.SyncSurgicalParams(project=PROJECT, issues=issues, mrs=mrs)
    result = await run_surgical_sync(engine, params)
    wall_ms = (time.perf_counter() - started) * 1000
    assert result.status == "succeeded", result.error
    return wall_ms, len(control.log()), result


def show(
    label: str, walls: list[float], requests: int, concurrency: int, latency_ms: int, extra: str
) -> float:
    bound = math.ceil(requests / concurrency) * latency_ms
    median = statistics.median(walls)
    print(
        f"{label:<34} median {median:7.1f} ms  (runs: {', '.join(f'{w:.0f}' for w in walls)})  "
        f"requests {requests:3d}  bound ceil({requests}/{concurrency})·{latency_ms} = {bound} ms  "
        f"ratio {median / bound:4.2f}  {extra}"
    )
    return median


async def main(latency_ms: int, reps: int = 1) -> None:
    """``reps`` scales the repetitions (1: the published runs; 0: each scenario once, a smoke run)."""
    proc, sim = start_simulator(latency_ms)
    control = SimControl(sim["base_url"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            print(f"simulator pid {sim['pid']} (separate process), L = {latency_ms} ms per API request")
            engine = build_engine(workdir, sim, 8)
            try:
                await timed_run(engine, control, list(range(100, 110)), list(range(60, 70)))  # warm-up
                one: list[float] = []
                for iid in range(1, 1 + max(1, 5 * reps)):
                    wall, requests, result = await timed_run(engine, control, [iid], [])
                    one.append(wall)
                show("1 issue, concurrency 8", one, requests, 8, latency_ms,
                     f"target 2L+50 = {2 * latency_ms + 50} ms")
                print(f"{'':<34} stage timings of the last run: {result.stage_timings_ms}")
                twenty: list[float] = []
                for rep in range(max(1, 3 * reps)):
                    issues = list(range(10 + rep * 10, 20 + rep * 10))
                    mrs = list(range(1 + rep * 10, 11 + rep * 10))
                    wall, requests, result = await timed_run(engine, control, issues, mrs)
                    twenty.append(wall)
                median = show("10 issues + 10 MRs, concurrency 8", twenty, requests, 8, latency_ms,
                              "target ≤ 1.3x bound")
                print(f"{'':<34} stage timings of the last run: {result.stage_timings_ms}")
            finally:
                await engine.aclose()
            serial = build_engine(workdir, sim, 1)
            try:
                await timed_run(serial, control, [119], [79])  # warm-up
                walls: list[float] = []
                for rep in range(max(1, 2 * reps)):
                    issues = list(range(50 + rep * 10, 60 + rep * 10))
                    mrs = list(range(35 + rep * 10, 45 + rep * 10))
                    wall, requests, _ = await timed_run(serial, control, issues, mrs)
                    walls.append(wall)
                serial_median = show("10 issues + 10 MRs, concurrency 1", walls, requests, 1, latency_ms, "")
            finally:
                await serial.aclose()
            print(f"speed-up of concurrency 8 over 1: {serial_median / median:.1f}x")
    finally:
        control.close()
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--smoke"]
    asyncio.run(main(int(args[0]) if args else 50, reps=0 if "--smoke" in sys.argv else 1))
