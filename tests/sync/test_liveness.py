"""Is a lock holder's process gone? Proven only on this host, with real processes (Linux /proc)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from lore_daemon.store.locks import LockInfo
from lore_daemon.sync.liveness import holder_gone, process_identity
from tests.support.wait import wait_until

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")


def _holder(pid: int, process: str | None, host: str | None = None) -> LockInfo:
    owner = f"{host or socket.gethostname()}:{pid}:abcd1234"
    return LockInfo(name="sync", owner=owner, run_id="r", pid=pid, acquired_at=0, heartbeat_at=0,
                    process=process)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_live_holder_is_not_gone() -> None:
    me = process_identity()
    assert me is not None and me.count("/") >= 2
    assert not holder_gone(_holder(os.getpid(), me))


PRINT_IDENTITY = "from lore_daemon.sync.liveness import process_identity; print(process_identity())"


def test_a_finished_and_reaped_holder_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", PRINT_IDENTITY], stdout=subprocess.PIPE, text=True)
    identity = child.communicate()[0].strip()  # the child ran, printed its identity, exited
    assert identity.startswith(process_identity().rpartition("/")[0])  # type: ignore[union-attr]
    assert holder_gone(_holder(child.pid, identity))


def test_a_zombie_holder_is_gone(sleeper: subprocess.Popen[bytes]) -> None:
    view = process_identity().rpartition("/")[0]  # type: ignore[union-attr]
    with open(f"/proc/{sleeper.pid}/stat", encoding="ascii") as stat:
        started = stat.read().rsplit(")", 1)[1].split()[19]
    identity = f"{view}/{started}"
    assert not holder_gone(_holder(sleeper.pid, identity))
    sleeper.kill()  # dead but not reaped yet: a zombie keeps its pid and start time

    def zombie() -> bool:
        with open(f"/proc/{sleeper.pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"

    wait_until(zombie, what="the killed child to become a zombie")
    assert holder_gone(_holder(sleeper.pid, identity))
    sleeper.wait()


def test_a_reused_pid_is_not_the_holder(sleeper: subprocess.Popen[bytes]) -> None:
    # The row names a pid that runs, but a process that started at another time: the holder that
    # wrote the row is gone, its pid was given to someone else.
    view = process_identity().rpartition("/")[0]  # type: ignore[union-attr]
    assert holder_gone(_holder(sleeper.pid, f"{view}/1"))


def test_what_cannot_be_proven_is_left_to_the_stale_rule(sleeper: subprocess.Popen[bytes]) -> None:
    me = process_identity()
    assert me is not None
    gone_pid = 2**22 + 12_345  # above Linux's pid_max default: no such process here
    assert not holder_gone(_holder(gone_pid, None))  # no identity recorded (older version, no /proc)
    assert not holder_gone(_holder(gone_pid, me, host="another-host"))  # another machine's pids
    other_namespace = "boot-id-of-elsewhere/pid:[1]/" + me.rpartition("/")[2]
    assert not holder_gone(_holder(gone_pid, other_namespace))  # another container's pids
    assert holder_gone(_holder(gone_pid, me))  # same host and namespace: provably gone
