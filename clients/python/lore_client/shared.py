"""Find, start and stop the shared warm daemon the ``lore`` bridge talks to.

The socket is ``$LORE_SOCKET``, else ``$XDG_RUNTIME_DIR/lore/daemon.sock``, else
``~/.cache/lore/daemon.sock``. When nothing answers there, ``ensure_daemon`` starts
``python -m lore_daemon --socket PATH`` detached (own session, stdin/stdout on /dev/null, stderr
and log in ``PATH.log``) with the caller's environment, and waits until it accepts. Two callers
racing to start it start only one: the loser exits at once (its socket lock is taken) and both
connect to the winner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lore_daemon.daemon_socket import answers, default_socket_path, log_path, running_pid
from lore_daemon.errors import DaemonError

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.02
EXIT_ALREADY_RUNNING = 75  # lore_daemon.cli: another daemon holds the lock (it will answer soon)

__all__ = ["default_socket_path", "ensure_daemon", "stop_daemon"]


def _unavailable(message: str, sock: Path) -> DaemonError:
    return DaemonError(
        message,
        "DAEMON_UNAVAILABLE",
        f"See its log at {log_path(sock)}; `lore --no-shared ...` runs a private daemon instead.",
        details={"path": str(sock)},
    )


def ensure_daemon(
    sock: Path, *, command: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    """Return ``sock`` once a daemon accepts there, starting one if nothing answers."""
    if answers(sock):
        return sock
    sock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [*(command or [sys.executable, "-m", "lore_daemon"]), "--socket", str(sock)]
    with open(log_path(sock), "ab") as log:
        os.chmod(log.name, 0o600)
        proc = subprocess.Popen(
            [*argv, "--log-file", str(log_path(sock))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # outlives this shell call; no terminal signals reach it
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if answers(sock, timeout_s=0.5):
            return sock
        code = proc.poll()
        if code is not None and code != EXIT_ALREADY_RUNNING:
            raise _unavailable(f"the shared daemon for {sock} exited with code {code} at start.", sock)
        time.sleep(POLL_S)
    raise _unavailable(f"the shared daemon for {sock} did not accept within {START_TIMEOUT_S:g} s.", sock)


def stop_daemon(sock: Path) -> int | None:
    """SIGTERM the daemon holding ``sock`` and wait until it is gone; its pid, or None if none ran.

    The daemon drains (in-flight runs end ``cancelled``) and removes its socket before it exits.
    """
    pid = running_pid(sock)
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while running_pid(sock) == pid:
        if time.monotonic() > deadline:
            message = f"the shared daemon (pid {pid}) did not stop within {STOP_TIMEOUT_S:g} s."
            raise _unavailable(message, sock)
        time.sleep(POLL_S)
    return pid
