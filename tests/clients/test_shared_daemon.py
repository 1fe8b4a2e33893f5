"""The shared warm daemon behind `lore`: real processes on a private socket (LORE_SOCKET in a
temporary directory), the simulator over loopback. Every daemon a test starts is stopped by the
`socket_path` fixture, so no test leaves one running."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import apsw

from lore_client.client import LoreClient
from lore_client.shared import stop_daemon
from lore_daemon.daemon_socket import lock_path, running_pid
from tests.support.wait import wait_until, wait_until_async

from .conftest import PROJECT, ClientEnv


def lore(env: ClientEnv, *args: str) -> tuple[int, dict[str, Any], float]:
    start = time.monotonic()
    proc = subprocess.run(env.lore(*args), env=env.env, capture_output=True, text=True, timeout=60)
    payload = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, payload, time.monotonic() - start


def ledger(env: ClientEnv) -> dict[str, str]:
    conn = apsw.Connection(str(env.db_path))
    return {run_id: status for run_id, status in conn.execute("SELECT run_id, status FROM sync_runs")}


def start_daemon(env: ClientEnv) -> int:
    """Start the shared daemon the way a user does (a `lore` call), so it is not our child."""
    code, status, _ = lore(env, "status")
    assert code == 0 and status["pid"] == running_pid(env.socket_path)
    return int(status["pid"])


def exited(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (it releases its lock just before the interpreter ends)."""
    wait_until(lambda: exited(pid), timeout=10, what=f"process {pid} to exit")
    return True


def test_first_call_starts_the_daemon_and_the_second_reuses_it(client_env: ClientEnv) -> None:
    assert not client_env.socket_path.exists()
    code1, first, cold = lore(client_env, "status")
    code2, second, warm = lore(client_env, "sync", "-p", PROJECT, "--issue", "3")
    code3, third, warm2 = lore(client_env, "status")
    print(f"\ncold start + status {cold:.3f} s, warm sync {warm:.3f} s, warm status {warm2:.3f} s")
    assert (code1, code2, code3) == (0, 0, 0)
    assert first["pid"] == third["pid"] == running_pid(client_env.socket_path)
    assert first["pid"] != os.getpid() and first["socketPath"] == str(client_env.socket_path)
    assert second["status"] == "succeeded"
    assert third["uptimeMs"] > first["uptimeMs"]  # one process kept running between the calls


def test_socket_is_user_only(client_env: ClientEnv) -> None:
    start_daemon(client_env)
    sock_mode = client_env.socket_path.stat().st_mode
    assert stat.S_ISSOCK(sock_mode) and stat.S_IMODE(sock_mode) == 0o600
    assert stat.S_IMODE(client_env.socket_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(lock_path(client_env.socket_path).stat().st_mode) == 0o600


async def test_concurrent_clients_each_get_only_their_own_progress(client_env: ClientEnv) -> None:
    start_daemon(client_env)
    seen: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    client_env.sim.control.set_latency(150, r"/issues/(7|8)/discussions")
    try:
        async with LoreClient.connect_shared(client_env.socket_path) as a, \
                LoreClient.connect_shared(client_env.socket_path) as b:
            for name, client in (("a", a), ("b", b)):
                def keep(method: str, params: Any, name: str = name) -> None:
                    if method == "lore/progress":
                        seen[name].append(params)

                client._endpoint.add_notification_handler(keep)
            res_a, res_b = await asyncio.gather(
                a.sync_surgical(on_progress=lambda _: None, project=PROJECT, issues=[7]),
                b.sync_surgical(on_progress=lambda _: None, project=PROJECT, issues=[8]),
            )
    finally:
        client_env.sim.control.set_latency(0, r"/issues/(7|8)/discussions")
    assert res_a.status == res_b.status == "succeeded" and res_a.run_id != res_b.run_id
    assert seen["a"] and seen["b"]
    assert {note["runId"] for note in seen["a"]} == {res_a.run_id}
    assert {note["runId"] for note in seen["b"]} == {res_b.run_id}


async def test_killing_one_client_mid_run_cancels_only_its_run(client_env: ClientEnv) -> None:
    start_daemon(client_env)
    slow = r"/issues/(11|12)$"
    client_env.sim.control.set_latency(2000, slow)
    try:
        victim = subprocess.Popen(
            client_env.lore("--progress", "sync", "-p", PROJECT, "--issue", "11"),
            env=client_env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        async with LoreClient.connect_shared(client_env.socket_path) as survivor:
            other = asyncio.ensure_future(survivor.sync_surgical(project=PROJECT, issues=[12]))
            assert victim.stderr is not None
            ready, _, _ = select.select([victim.stderr], [], [], 20)  # its run began: progress printed
            assert ready and b"[preflight:begin]" in victim.stderr.readline()
            victim.kill()
            victim.wait(10)
            result = await other
    finally:
        client_env.sim.control.set_latency(0, slow)
    assert result.status == "succeeded"
    await wait_until_async(lambda: "running" not in ledger(client_env).values(), timeout=10,
                           what="every run to finish")
    statuses = ledger(client_env)
    assert statuses.pop(result.run_id) == "succeeded"
    assert list(statuses.values()) == ["cancelled"]  # the killed client's run, and nothing else
    code, status, _ = lore(client_env, "status")
    assert code == 0 and status["pid"] == running_pid(client_env.socket_path)  # the daemon lives on


def test_daemon_stop_cancels_runs_and_removes_the_socket(client_env: ClientEnv) -> None:
    pid = start_daemon(client_env)
    slow = r"/issues/13$"
    client_env.sim.control.set_latency(3000, slow)
    try:
        running = subprocess.Popen(
            client_env.lore("--progress", "sync", "-p", PROJECT, "--issue", "13"),
            env=client_env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert running.stderr is not None
        ready, _, _ = select.select([running.stderr], [], [], 20)
        assert ready and b"[preflight:begin]" in running.stderr.readline()
        code, stopped, _ = lore(client_env, "daemon", "stop")
        running.wait(20)
    finally:
        client_env.sim.control.set_latency(0, slow)
    assert code == 0 and stopped == {"socket": str(client_env.socket_path), "stopped": True, "pid": pid}
    assert gone(pid) and not client_env.socket_path.exists()
    assert running.returncode == 130  # its run was cancelled by the daemon's SIGTERM drain
    assert list(ledger(client_env).values()) == ["cancelled"]
    code, again, _ = lore(client_env, "daemon", "stop")
    assert code == 0 and again["stopped"] is False


def test_stale_socket_file_is_taken_over(client_env: ClientEnv) -> None:
    client_env.socket_path.parent.mkdir(mode=0o700, parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(client_env.socket_path))
    dead.close()  # the file stays; nothing listens: what a crashed daemon leaves behind
    code, status, _ = lore(client_env, "status")
    assert code == 0 and status["pid"] == running_pid(client_env.socket_path)


def test_a_second_daemon_refuses_a_live_socket(client_env: ClientEnv) -> None:
    pid = start_daemon(client_env)
    second = subprocess.run(
        [sys.executable, "-m", "lore_daemon", "--socket", str(client_env.socket_path)],
        env=client_env.env, capture_output=True, text=True, timeout=30,
    )
    assert second.returncode == 75 and "DAEMON_UNAVAILABLE" in second.stderr
    assert running_pid(client_env.socket_path) == pid and client_env.socket_path.exists()


def test_idle_daemon_exits_and_removes_its_socket(client_env: ClientEnv) -> None:
    client_env.socket_path.parent.mkdir(mode=0o700, parents=True)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon", "--socket", str(client_env.socket_path),
         "--idle-timeout", "0.5"],
        env=client_env.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        assert daemon.wait(20) == 0
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    assert not client_env.socket_path.exists() and running_pid(client_env.socket_path) is None


def test_no_shared_spawns_a_private_daemon(client_env: ClientEnv) -> None:
    code, status, _ = lore(client_env, "--no-shared", "status")
    assert code == 0 and status["socketPath"] is None and status["pid"] != os.getpid()
    assert not client_env.socket_path.exists() and running_pid(client_env.socket_path) is None
    assert gone(status["pid"])  # the private daemon ended with the call


def test_stop_daemon_waits_until_the_daemon_has_exited(client_env: ClientEnv) -> None:
    """What the fixture finalizer relies on so that no test leaves a daemon behind."""
    pid = start_daemon(client_env)
    assert stop_daemon(Path(client_env.socket_path)) == pid and gone(pid)
