"""Where the shared daemon listens, and how it takes its socket safely. Standard library only.

The bridge imports this too (to find, start and stop the daemon), so it must stay light.

Safety rules: the socket file is created with mode 0600 (bound under a 0177 umask, then chmod)
in a directory created 0700; a path owned by another user is refused; a live daemon answering
at the path is never displaced, a stale socket file of a dead one is removed and taken over. One
daemon per socket is guaranteed by an exclusive ``flock`` on ``<socket>.lock``, held for the
daemon's whole life; the lock file also records the daemon's pid, trusted only while locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from lore_daemon.errors import DaemonError

SOCKET_NAME = "daemon.sock"
LISTEN_BACKLOG = 64


def default_socket_path(env: Mapping[str, str]) -> Path:
    """``$LORE_SOCKET``, else ``$XDG_RUNTIME_DIR/lore/daemon.sock``, else ``~/.cache/lore/daemon.sock``."""
    if env.get("LORE_SOCKET"):
        return Path(env["LORE_SOCKET"]).expanduser()
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "lore" / SOCKET_NAME
    return Path.home() / ".cache" / "lore" / SOCKET_NAME


def lock_path(sock: Path) -> Path:
    return sock.with_name(sock.name + ".lock")


def log_path(sock: Path) -> Path:
    return sock.with_name(sock.name + ".log")


def _unavailable(message: str, suggestion: str, **details: str) -> DaemonError:
    return DaemonError(message, "DAEMON_UNAVAILABLE", suggestion, details=dict(details))


def ensure_private_dir(directory: Path) -> None:
    """Create the socket's directory 0700; refuse one another user controls (unless sticky, like /tmp)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid != os.getuid() and not st.st_mode & stat.S_ISVTX:
        raise _unavailable(
            f"{directory} belongs to another user; the daemon will not put its socket there.",
            "Set LORE_SOCKET to a path in a directory you own.",
            path=str(directory),
        )


class DaemonLock:
    """The exclusive lock that makes one daemon per socket; records the holder's pid."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, sock: Path) -> DaemonLock:
        fd = os.open(lock_path(sock), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = running_pid(sock)
            raise _unavailable(
                f"another lore-daemon (pid {pid}) serves or is starting on {sock}.",
                "Use it, or stop it first with `lore daemon stop`.",
                path=str(sock),
                reason="locked",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(fd)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor releases the flock


def running_pid(sock: Path) -> int | None:
    """The pid of the daemon holding ``sock``'s lock, or None when no daemon holds it."""
    try:
        fd = os.open(lock_path(sock), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)  # we got it: nobody holds it, no daemon runs
        return None
    finally:
        os.close(fd)


def answers(sock: Path, timeout_s: float = 1.0) -> bool:
    """True when something accepts connections on ``sock``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout_s)
    try:
        probe.connect(str(sock))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _clear_stale(sock: Path) -> None:
    try:
        st = os.lstat(sock)
    except FileNotFoundError:
        return
    if st.st_uid != os.getuid():
        raise _unavailable(
            f"{sock} belongs to another user.", "Set LORE_SOCKET to a path you own.", path=str(sock)
        )
    if not stat.S_ISSOCK(st.st_mode):
        raise _unavailable(
            f"{sock} exists and is not a socket; the daemon will not replace it.",
            "Remove it, or set LORE_SOCKET to another path.",
            path=str(sock),
        )
    if answers(sock):
        raise _unavailable(
            f"a daemon already answers on {sock}.",
            "Use it, or stop it with `lore daemon stop`.",
            path=str(sock),
        )
    sock.unlink()  # a stale socket file left by a daemon that died: take it over


def bind_socket(sock: Path) -> socket.socket:
    """A listening socket at ``sock``, mode 0600. Call with the ``DaemonLock`` held."""
    ensure_private_dir(sock.parent)
    _clear_stale(sock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        listener.bind(str(sock))
    except OSError as exc:
        listener.close()
        raise _unavailable(
            f"cannot bind {sock}: {exc.strerror or exc}.",
            "Use a shorter LORE_SOCKET path (Unix sockets allow about 100 bytes) in a directory you own.",
            path=str(sock),
        ) from None
    finally:
        os.umask(old_umask)
    os.chmod(sock, 0o600)
    listener.listen(LISTEN_BACKLOG)
    return listener


def remove_socket(sock: Path) -> None:
    """Unlink the socket file. Call with the lock still held, so it cannot be a successor's."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(sock).st_mode):
            sock.unlink()
