"""Two daemons (two real processes) running standard syncs on one database file.

The second either waits for the ``sync`` lock or gives up cleanly with ``LOCK_TIMEOUT``; neither
corrupts anything. A holder killed with SIGKILL is taken over once its heartbeat is older than
``stale_lock_ms``, and its run is closed ``failed``/``ABANDONED`` with the phase it died in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lore_daemon.sim import SimServer
from tests.support import REPO
from tests.support.wait import wait_until

from .conftest import SMALL
from .support import (
    PROJECT,
    assert_consistent,
    assert_matches_truth,
    connect,
    env_for_child,
    integrity_ok,
    scalar,
    write_config,
)

CHILD = "tests.sync.standard_child"


class Child:
    def __init__(self, config: Path, token: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", CHILD, str(config)],
            stdout=subprocess.PIPE, text=True, env=env_for_child(token), cwd=REPO,
        )
        assert self.proc.stdout is not None
        started = json.loads(self.proc.stdout.readline())
        assert started["event"] == "started"
        self.pid: int = started["pid"]

    def result(self, timeout: float = 60) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, out
        line = json.loads(out.strip().splitlines()[-1])
        assert line["event"] == "result"
        return dict(line["result"])

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def procs() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        if child.proc.poll() is None:
            child.kill()


def _config(tmp_path: Path, name: str, sim: SimServer, db: Path, **sync: int) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return write_config(folder, sim.base_url, db_path=db, **sync)


def _lock_holder_pid(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        return scalar(db, "SELECT pid FROM app_locks WHERE name = 'sync'")  # type: ignore[no-any-return]
    except Exception:  # the schema may not exist yet while the first child migrates
        return None


def test_second_process_times_out_cleanly_then_waits_successfully(
    sim: SimServer, tmp_path: Path, procs: list[Child]
) -> None:
    db = tmp_path / "shared.db"
    sim.control.set_latency(50)  # keep the holder busy for a couple of seconds
    holder = Child(_config(tmp_path, "a", sim, db), sim.token)
    procs.append(holder)
    wait_until(
        lambda: _lock_holder_pid(db) == holder.pid, timeout=30, what="the first process to take the lock"
    )

    impatient = Child(_config(tmp_path, "b", sim, db, lock_timeout_ms=300), sim.token)
    procs.append(impatient)
    patient = Child(_config(tmp_path, "c", sim, db, lock_timeout_ms=60_000), sim.token)
    procs.append(patient)

    refused = impatient.result()
    assert refused["status"] == "failed" and refused["failedPhase"] == "ingest"
    assert refused["error"]["code"] == "LOCK_TIMEOUT" and refused["error"]["retryable"] is True
    assert refused["error"]["details"]["holderPid"] == holder.pid
    assert [a["kind"] for a in refused["recoveryActions"]] == ["waitAndRetry"]
    assert refused["counters"]["issuesFetched"] == 0

    first = holder.result()
    assert first["status"] == "succeeded", first
    sim.control.set_latency(0)
    second = patient.result()
    assert second["status"] == "succeeded", second
    assert second["stageTimingsMs"]["lockWait"] > 0
    assert second["counters"]["issuesIngested"] == 0  # the first run left nothing to do

    assert integrity_ok(db)
    statuses = sorted(r[0] for r in connect(db).execute("SELECT status FROM sync_runs"))
    assert statuses == ["failed", "succeeded", "succeeded"]
    assert scalar(db, "SELECT count(*) FROM app_locks") == 0
    assert_matches_truth(db, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db)


def test_killed_holder_is_taken_over_after_stale_lock_ms(
    sim: SimServer, tmp_path: Path, procs: list[Child]
) -> None:
    db = tmp_path / "shared.db"
    sim.control.set_latency(25)
    victim = Child(_config(tmp_path, "victim", sim, db, stale_lock_ms=1000), sim.token)
    procs.append(victim)
    wait_until(
        lambda: _lock_holder_pid(db) == victim.pid
        and scalar(db, "SELECT count(*) FROM sync_runs WHERE phase = 'dependents'") == 1
        and scalar(db, "SELECT count(*) FROM discussions") > 0,
        timeout=30, what="the victim to be writing dependents",
    )
    victim_run = scalar(db, "SELECT run_id FROM sync_runs")
    victim.kill()
    assert integrity_ok(db)

    sim.control.set_latency(0)
    survivor = Child(_config(tmp_path, "survivor", sim, db, stale_lock_ms=1000, lock_timeout_ms=20_000),
                     sim.token)
    procs.append(survivor)
    result = survivor.result()

    assert result["status"] == "succeeded", result
    dead = connect(db).execute(
        "SELECT status, phase, failed_phase, error_json, heartbeat_at, finished_at FROM sync_runs "
        "WHERE run_id = ?", (victim_run,)
    ).fetchone()
    assert dead[:3] == ("failed", "failed", "dependents")
    error = json.loads(dead[3])
    assert error["code"] == "ABANDONED"
    # Taken over only once stale: whichever heartbeat was the evidence (the lock's on takeover,
    # the run's when the survivor's start closed it), it was stale_lock_ms old at that moment.
    # (How long the survivor itself waited depends on how fast it started, so it is not asserted.)
    evidence = error["details"].get("lockHeartbeatAt", dead[4])
    assert dead[5] - evidence >= 1000, (dead[5], evidence)
    assert scalar(db, "SELECT count(*) FROM app_locks") == 0
    assert integrity_ok(db)
    assert_matches_truth(db, sim.control.dump(PROJECT), sample_every=3)
    assert_consistent(db)
    assert SMALL.issues == scalar(db, "SELECT count(*) FROM issues")
