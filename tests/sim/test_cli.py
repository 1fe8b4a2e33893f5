"""``python -m lore_daemon.sim``: one JSON line when listening, exit 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx


def test_cli_announces_serves_and_exits_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lore_daemon.sim",
            "--port",
            "0",
            "--seed",
            "9",
            "--issues",
            "25",
            "--mrs",
            "5",
            "--notes-per-entity",
            "3",
            "--token",
            "cli-token",
            "--latency-ms",
            "0",
            "--total-threshold",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"base_url", "token", "pid"}
        assert info["token"] == "cli-token" and info["pid"] == proc.pid
        assert info["base_url"].startswith("http://127.0.0.1:")
        resp = httpx.get(
            f"{info['base_url']}/api/v4/projects/1/issues",
            headers={"PRIVATE-TOKEN": "cli-token"},
            trust_env=False,
        )
        assert resp.status_code == 200 and "x-total" not in resp.headers  # 25 > --total-threshold 10
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_sigint_also_exits_zero_and_bad_options_exit_two() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lore_daemon.sim"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    bad = subprocess.run(
        [sys.executable, "-m", "lore_daemon.sim", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "INVALID_PARAMS" in bad.stderr
