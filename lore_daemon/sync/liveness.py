"""Is a lock holder's process still there? Only a process of this host can tell, and only for certain.

A lock row records its holder's process as "<boot id>/<pid namespace>/<start time>" (Linux
/proc). Another process that reads the same boot id and pid namespace sees the same pids, so it
can tell for certain that the holder is gone: no such pid, a zombie, or a pid now used by a
process that started at another time (pid reuse). Anything it cannot prove — another host or
container, no /proc, an unreadable entry, a live process that merely stopped heartbeating —
leaves the holder to the stale rule (``stale_lock_ms``).
"""

from __future__ import annotations

import functools
import os
import socket

from lore_daemon.store.locks import LockInfo

_PROC = "/proc"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return None


def _host_view() -> str | None:
    """``<boot id>/<pid namespace>`` of this process: who can compare pids with us."""
    return _host_view_of(os.getpid())


@functools.lru_cache(maxsize=4)
def _host_view_of(_pid: int) -> str | None:  # keyed by our pid: a forked child reads its own
    boot = _read(f"{_PROC}/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return None
    return None if not boot else f"{boot}/{namespace}"


def _start_and_state(pid: int) -> tuple[str, str] | None:
    """The process's start time (clock ticks since boot) and state letter, None without it."""
    stat = _read(f"{_PROC}/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) ": state is field 3, start 22
    if len(fields) < 20:
        return None
    return fields[19], fields[0]


def process_identity() -> str | None:
    """The identity recorded with a lock this process takes; None where /proc cannot tell it."""
    return _identity_of(os.getpid())


@functools.lru_cache(maxsize=4)
def _identity_of(pid: int) -> str | None:
    view = _host_view_of(pid)
    found = _start_and_state(pid)
    return None if view is None or found is None else f"{view}/{found[0]}"


def holder_gone(holder: LockInfo) -> bool:
    """True only when the holder's process is provably gone from this host (see above)."""
    if holder.process is None:
        return False
    view, _, started = holder.process.rpartition("/")
    if not started or view != _host_view() or holder.owner.split(":", 1)[0] != socket.gethostname():
        return False
    found = _start_and_state(holder.pid)
    if found is None:  # no /proc entry in our own pid namespace: the process does not exist
        return not os.path.exists(f"{_PROC}/{holder.pid}")
    start, state = found
    return start != started or state in ("Z", "X")
