"""The sync lock across real processes on one database file (docs/surgical-sync.md, invariants 5 and 11).

Each child (``lock_child.py``) is a separate Python process with its own Database, like a second
daemon. They report what they do as JSON lines; the parent checks the order of events and the
rows they left behind.
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

from lore_daemon.store import ledger, locks
from lore_daemon.store.connection import open_connection
from lore_daemon.store.migrations import migrate

CHILD = Path(__file__).with_name("lock_child.py")
STALE_MS = 600


class Child:
    def __init__(self, db_path: Path, run_id: str, *, hold_ms: int, timeout_ms: int = 15_000) -> None:
        self.run_id = run_id
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(db_path), run_id, str(hold_ms), str(STALE_MS), str(timeout_ms)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.events: list[dict[str, Any]] = []

    def wait_for(self, event: str) -> dict[str, Any]:
        """Read lines until ``event`` (blocking; the suite's timeout bounds a hung child)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))
            if self.events[-1]["event"] == "violation":
                pytest.fail(f"{self.run_id} saw another holder: {self.events[-1]}")
            if self.events[-1]["event"] == event:
                return self.events[-1]
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        pytest.fail(f"{self.run_id} exited without {event!r}: {self.events} {stderr}")

    def let_go(self, db_path: Path) -> None:
        """Tell a child started with ``hold_ms=-1`` to release its lock and finish."""
        Path(f"{db_path}.{self.run_id}.release").touch()

    def finish(self) -> int:
        self.wait_for("done")
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=15)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "shared.db"
    conn = open_connection(path)
    migrate(conn)
    conn.close()
    yield path


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:  # only our own children, by their Popen handle
        if child.proc.poll() is None:
            child.kill()


def _integrity(path: Path) -> str:
    conn = open_connection(path)
    try:
        row = conn.execute("PRAGMA integrity_check").fetchone()
        assert row is not None
        return str(row[0])
    finally:
        conn.close()


def test_second_process_waits_and_never_overlaps(db_path: Path, children: list[Child]) -> None:
    first = Child(db_path, "run-a", hold_ms=-1)
    children.append(first)
    acquired_a = first.wait_for("acquired")
    second = Child(db_path, "run-b", hold_ms=100)
    children.append(second)

    waiting = second.wait_for("waiting")
    assert (waiting["holderRunId"], waiting["holderOwner"]) == ("run-a", acquired_a["owner"])
    first.let_go(db_path)
    acquired_b = second.wait_for("acquired")
    released_a = first.wait_for("releasing")
    assert acquired_b["tookOverFrom"] is None  # a clean hand-over, not a takeover
    assert acquired_b["waitedMs"] > 0
    # The holding intervals [acquired, releasing] never overlap.
    assert released_a["t"] <= acquired_b["t"]
    assert first.finish() == 0 and second.finish() == 0

    conn = open_connection(db_path)
    try:
        assert locks.lock_holders(conn) == []
        runs = {r.run_id: r for r in ledger.list_runs(conn)}
        assert runs["run-a"].status == runs["run-b"].status == "succeeded"
    finally:
        conn.close()


def test_killed_holder_is_taken_over_only_after_it_goes_stale(db_path: Path, children: list[Child]) -> None:
    holder = Child(db_path, "run-0", hold_ms=-1)
    children.append(holder)
    holder.wait_for("acquired")
    for generation in (1, 2):  # kill the holder twice: each time the waiting process takes over
        waiter = Child(db_path, f"run-{generation}", hold_ms=-1 if generation == 1 else 50)
        children.append(waiter)
        waiting = waiter.wait_for("waiting")
        assert waiting["holderRunId"] == holder.run_id

        holder.kill()  # mid-hold, while it writes ledger updates every few ms
        assert _integrity(db_path) == "ok"

        acquired = waiter.wait_for("acquired")
        took = acquired["tookOverFrom"]
        assert took is not None and (took["runId"], took["pid"]) == (holder.run_id, holder.proc.pid)

        conn = open_connection(db_path)
        try:
            dead = ledger.get_run(conn, holder.run_id)
        finally:
            conn.close()
        assert dead is not None
        assert (dead.status, dead.phase, dead.failed_phase) == ("failed", "failed", "dependents")
        assert dead.error is not None and dead.error.code == "ABANDONED" and dead.error.retryable
        # Taken over only once the dead holder's lock heartbeat was older than the stale window.
        assert dead.error.details["lock"] == "sync"
        assert acquired["t"] - dead.error.details["lockHeartbeatAt"] > STALE_MS
        assert dead.suggested_retry is not None and dead.suggested_retry.kind == "retryRun"
        holder = waiter

    assert holder.finish() == 0
    assert _integrity(db_path) == "ok"
    conn = open_connection(db_path)
    try:
        assert locks.lock_holders(conn) == []
        statuses = {r.run_id: r.status for r in ledger.list_runs(conn)}
    finally:
        conn.close()
    assert statuses == {"run-0": "failed", "run-1": "failed", "run-2": "succeeded"}
    assert os.path.getsize(db_path) > 0
