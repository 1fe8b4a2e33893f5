"""Protocol latency of lore-daemon over real stdio (prints figures; asserts nothing).

* cold: spawn → first response (initialize), and spawn → first lore/syncRuns answer (db open);
* warm: p50/p99 round-trip of lore/syncRuns (limit 20) on a ledger of 10,000 runs;
* busy: the same while standard syncs run against the simulator (slowed so they keep running);
* idle RSS of the daemon (VmRSS from /proc/<pid>/status).

Run: ``.venv/bin/python tests/bench/protocol_latency.py`` (or ``make bench``); ``--smoke`` runs
every step at a tiny size (tests/test_bench_smoke.py: the figures are then meaningless).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lore_daemon.protocol import RequestedTargets
from lore_daemon.store import ledger
from lore_daemon.store.connection import Database


@dataclass(frozen=True)
class Sizes:
    ledger_runs: int = 10_000
    warm_samples: int = 2_000
    busy_samples: int = 600
    cold_spawns: int = 5
    sim_issues: int = 400
    sim_mrs: int = 100


SMOKE = Sizes(ledger_runs=200, warm_samples=20, busy_samples=10, cold_spawns=1, sim_issues=20, sim_mrs=5)
FLOOR_PARAMS = {"runId": "no-such-run"}  # same method, no rows: the protocol + DB round trip alone
TARGETS = {"warm_p50_ms": 2.0, "cold_over_warm": 100.0, "busy_p99_ms": 20.0, "idle_rss_mb": 80.0}


class Daemon:
    """Minimal framed JSON-RPC client over the daemon's stdin/stdout."""

    def __init__(self, env: dict[str, str]) -> None:
        self.spawned = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lore_daemon"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        self._buf = b""
        self._id = 0
        self.responses: dict[Any, dict[str, Any]] = {}

    def send(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        if msg_id is None:
            self._id += 1
            msg_id = self._id
        body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()
        self._in.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self._in.flush()
        return msg_id

    def _frame(self) -> dict[str, Any]:
        while True:
            head, sep, rest = self._buf.partition(b"\r\n\r\n")
            if sep:
                length = next(
                    int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(rest) >= length:
                    self._buf = rest[length:]
                    message: dict[str, Any] = json.loads(rest[:length])
                    return message
            select.select([self._out], [], [], 60)
            chunk = os.read(self._out, 1 << 20)
            if not chunk:
                raise EOFError("daemon closed stdout")
            self._buf += chunk

    def wait_for(self, msg_id: Any) -> dict[str, Any]:
        while msg_id not in self.responses:
            message = self._frame()
            if "method" in message:
                if "id" in message:  # a request to us (progress create): accept it
                    body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": None}).encode()
                    self._in.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    self._in.flush()
                continue
            self.responses[message["id"]] = message
        return self.responses.pop(msg_id)

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        return self.wait_for(self.send(method, params))

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.call("shutdown")
        body = b'{"jsonrpc":"2.0","method":"exit"}'
        self._in.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self._in.flush()
        self.proc.wait(30)


def seed_ledger(db_path: Path, count: int) -> None:
    now = int(time.time() * 1000) - count * 1000
    statuses = ("succeeded", "failed", "partial", "cancelled")

    def work(conn: Any) -> None:
        with conn:
            for i in range(count):
                run_id = f"bench-{i:05d}"
                ledger.start_run(
                    conn, run_id=run_id, mode="surgical", phase="preflight", project="group/project",
                    requested=RequestedTargets(issues=[i % 500 + 1], projects=["group/project"]),
                    owner="bench:1:0", pid=1, now_ms=now + i * 1000,
                )
                ledger.finish_run(conn, run_id, status=statuses[i % 4], now_ms=now + i * 1000 + 300)

    db = Database(db_path)
    db.open()
    try:
        db.write_sync(work)
    finally:
        db.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_calls(daemon: Daemon, n: int, params: dict[str, Any]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply = daemon.call("lore/syncRuns", params)
        out.append((time.perf_counter() - t0) * 1000)
        assert "result" in reply, reply
    return out


def _pcts(samples: list[float]) -> str:
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    return f"p50 {p50:6.3f} ms  p99 {p99:6.3f} ms (n={len(samples)})"


def list_runs_cost(db_path: Path, rounds: int = 200) -> float:
    """Mean in-process time of the ledger read behind lore/syncRuns limit=20, for attribution."""
    from lore_daemon.store.connection import open_connection

    conn = open_connection(db_path, readonly=True)
    try:
        ledger.list_runs(conn, limit=20)
        t0 = time.perf_counter()
        for _ in range(rounds):
            ledger.list_runs(conn, limit=20)
        return (time.perf_counter() - t0) / rounds * 1000
    finally:
        conn.close()


def make_env(tmp: Path, base_url: str, token: str) -> dict[str, str]:
    config = tmp / "config.toml"
    config.write_text(
        f'[gitlab]\nbase_url = "{base_url}"\ntoken_env = "GITLAB_TOKEN"\n'
        '[[projects]]\npath = "group/project"\n'
        '[embedding]\nprovider = "none"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "LORE_"))}
    env.update(LORE_CONFIG_PATH=str(config), LORE_DB_PATH=str(tmp / "lore.db"), GITLAB_TOKEN=token)
    env["HOME"] = str(tmp)
    return env


def start_simulator(sizes: Sizes) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """The simulator in its own process (``lore-daemon sim``), so its work never shares this
    process's GIL with the timing loop. Every request is slowed by 10 ms so syncs keep running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon", "sim", "--seed", "3", "--issues", str(sizes.sim_issues),
         "--mrs", str(sizes.sim_mrs), "--latency-ms", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    announced: dict[str, Any] = json.loads(proc.stdout.readline())
    return proc, announced


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs, not the figures")
    sizes = SMOKE if parser.parse_args().smoke else Sizes()
    sim, announced = start_simulator(sizes)
    try:
        return measure(announced["base_url"], announced["token"], sizes)
    finally:
        sim.terminate()
        sim.wait(30)


def measure(base_url: str, token: str, sizes: Sizes) -> int:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        env = make_env(tmp, base_url, token)
        t0 = time.perf_counter()
        seed_ledger(tmp / "lore.db", sizes.ledger_runs)
        print(f"seeded {sizes.ledger_runs} ledger runs in {time.perf_counter() - t0:.2f} s")
        params = {"limit": 20}

        cold_init, cold_first = [], []
        for _ in range(sizes.cold_spawns):
            d = Daemon(env)
            d.call("initialize", {"processId": os.getpid(), "capabilities": {}})
            cold_init.append((time.perf_counter() - d.spawned) * 1000)
            d.call("lore/syncRuns", params)
            cold_first.append((time.perf_counter() - d.spawned) * 1000)
            d.close()

        d = Daemon(env)
        d.call("initialize", {"processId": os.getpid(), "capabilities": {}})
        timed_calls(d, min(100, sizes.warm_samples), params)  # warm-up: db open, reader threads, caches
        warm = timed_calls(d, sizes.warm_samples, params)
        floor = timed_calls(d, sizes.warm_samples, FLOOR_PARAMS)
        time.sleep(0.5)
        idle_rss = d.rss_mb()

        # Busy: standard syncs keep running (the simulator slows every request by 10 ms).
        busy: list[float] = []
        busy_floor: list[float] = []
        syncs = 0
        sync_id = d.send("lore/sync", {})
        while len(busy) < sizes.busy_samples:
            if sync_id in d.responses:
                d.responses.pop(sync_id)
                syncs += 1
                sync_id = d.send("lore/sync", {})
            busy.extend(timed_calls(d, 1, params))
            busy_floor.extend(timed_calls(d, 1, FLOOR_PARAMS))
        sync_reply = d.wait_for(sync_id)
        busy_rss = d.rss_mb()
        d.close()
        in_process = list_runs_cost(tmp / "lore.db")

    warm_p50, warm_p99 = statistics.median(warm), percentile(warm, 0.99)
    busy_p50, busy_p99 = statistics.median(busy), percentile(busy, 0.99)
    cold = statistics.median(cold_first)
    rows = [
        ("cold spawn -> initialize answered", f"median {statistics.median(cold_init):8.1f} ms"),
        ("cold spawn -> first lore/syncRuns", f"median {cold:8.1f} ms ({sizes.cold_spawns} spawns)"),
        ("warm lore/syncRuns limit=20", f"p50 {warm_p50:6.3f} ms  p99 {warm_p99:6.3f} ms (n={len(warm)})"),
        ("cold / warm p50", f"{cold / warm_p50:8.0f} x"),
        ("  of which ledger.list_runs(20)", f"{in_process:6.3f} ms in-process (query, decode, retry hints)"),
        ("warm protocol floor (no rows)", _pcts(floor)),
        ("during standard syncs", f"p50 {busy_p50:6.3f} ms  p99 {busy_p99:6.3f} ms (n={len(busy)})"),
        ("  protocol floor during syncs", _pcts(busy_floor)),
        ("  syncs run meanwhile", f"{syncs + 1}, last {sync_reply.get('result', {}).get('status')}"),
        ("idle RSS", f"{idle_rss:8.1f} MB (after syncs: {busy_rss:.1f} MB)"),
    ]
    for label, value in rows:
        print(f"{label:<36} {value}")
    print("targets: warm p50 <= {warm_p50_ms} ms, cold >= {cold_over_warm:.0f}x warm, busy p99 <= "
          "{busy_p99_ms} ms, idle RSS <= {idle_rss_mb} MB".format(**TARGETS))
    verdicts = {
        "warm p50": warm_p50 <= TARGETS["warm_p50_ms"],
        "cold/warm": cold / warm_p50 >= TARGETS["cold_over_warm"],
        "busy p99": busy_p99 <= TARGETS["busy_p99_ms"],
        "idle RSS": idle_rss <= TARGETS["idle_rss_mb"],
    }
    print("  " + ", ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in verdicts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
