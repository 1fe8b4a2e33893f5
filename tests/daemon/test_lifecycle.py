"""LSP lifecycle over real stdio: initialize, shutdown/exit, EOF, SIGTERM, requests after shutdown."""

from __future__ import annotations

import signal

import pytest
from pygls.exceptions import JsonRpcException

from .support import ClientPool, DaemonEnv, RawDaemon, rpc

EXPECTED_METHODS = [
    "lore/get", "lore/list", "lore/preflight", "lore/robotDocs", "lore/search", "lore/status", "lore/sync",
    "lore/syncRuns", "lore/syncSurgical",
]


def test_initialize_advertises_the_lore_methods_and_progress_notification(raw_daemon: RawDaemon) -> None:
    response = raw_daemon.initialize()
    result = response["result"]
    assert result["serverInfo"]["name"] == "lore-daemon"
    lore = result["capabilities"]["experimental"]["lore"]
    assert lore["methods"] == EXPECTED_METHODS
    assert lore["notifications"] == ["lore/progress"]


async def test_shutdown_then_exit_ends_the_process_with_code_0(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    client = await clients.start(daemon_env)
    await client.shutdown_session()
    assert client._server is not None
    assert client._server.returncode == 0


def test_exit_without_shutdown_ends_with_code_1(raw_daemon: RawDaemon) -> None:
    raw_daemon.initialize()
    raw_daemon.send({"jsonrpc": "2.0", "method": "exit"})
    assert raw_daemon.wait() == 1


async def test_a_request_after_shutdown_gets_invalid_request(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    client = await clients.start(daemon_env)
    await client.shutdown_async(None)
    with pytest.raises(JsonRpcException) as err:
        await rpc(client, "lore/status", {})
    assert err.value.code == -32600
    assert err.value.data["code"] == "INVALID_REQUEST"
    client.exit(None)
    assert client._server is not None
    assert await client._server.wait() == 0


def test_end_of_input_on_stdin_stops_the_daemon(raw_daemon: RawDaemon) -> None:
    raw_daemon.initialize()
    assert raw_daemon.request("lore/status", {})["result"]["schemaVersion"] >= 1  # warm: db open
    raw_daemon.close_stdin()
    assert raw_daemon.wait() == 0
    assert "stopping: end of input on stdin" in raw_daemon.log_text()


def test_sigterm_stops_the_daemon_cleanly(raw_daemon: RawDaemon) -> None:
    raw_daemon.initialize()
    assert "result" in raw_daemon.request("lore/syncRuns", {})
    raw_daemon.proc.send_signal(signal.SIGTERM)
    assert raw_daemon.wait() == 0
    log = raw_daemon.log_text()
    assert "stopping: signal SIGTERM" in log
    assert "database closed" in log


def test_requests_are_served_before_initialize(raw_daemon: RawDaemon) -> None:
    """Scripts may skip the handshake; custom methods answer anyway (documented)."""
    response = raw_daemon.request("lore/robotDocs", {})
    assert response["result"]["name"] == "lore-daemon"


def test_version_flag_prints_the_version(daemon_env: DaemonEnv) -> None:
    import subprocess

    from lore_daemon import __version__

    from .support import DAEMON

    out = subprocess.run(
        [*DAEMON, "--version"], capture_output=True, text=True, env=daemon_env.env, timeout=30
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"lore-daemon {__version__}"


def test_sim_subcommand_runs_the_simulator(daemon_env: DaemonEnv) -> None:
    import json
    import subprocess

    from .support import DAEMON

    proc = subprocess.Popen(
        [*DAEMON, "sim", "--issues", "2", "--mrs", "1"], stdout=subprocess.PIPE, env=daemon_env.env
    )
    try:
        assert proc.stdout is not None
        announced = json.loads(proc.stdout.readline())
        assert announced["base_url"].startswith("http://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        if proc.stdout is not None:
            proc.stdout.close()
