"""The shared warm daemon: many clients over one Unix socket, one warm engine for all of them.

pygls serves one client per server object, so every connection gets its own ``LanguageServer``
and ``Runtime`` (its own requests, progress and ``shutdown``), while all of them share one
``WarmState``: configuration, database writer and GitLab client stay warm across ``lore`` calls.

Per connection: progress goes only to the connection whose request started the run; a
disconnect, ``shutdown`` or ``exit`` cancels and awaits only that connection's runs and closes
only it. SIGTERM/SIGINT/SIGHUP stop the daemon: no new connections, every connection drained
(runs end ``cancelled``), warm state closed, socket file removed. With no connection for
``idle_timeout_s`` the daemon exits the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import struct
from pathlib import Path

from lore_daemon.daemon_socket import DaemonLock, bind_socket, remove_socket
from lore_daemon.rpc.connection import Connection
from lore_daemon.rpc.lsp import LoreProtocol
from lore_daemon.server import build_server
from lore_daemon.services.runtime import DaemonSettings, WarmState

log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT_S = 600.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid (Linux ``SO_PEERCRED``); None where the platform lacks it."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class SocketDaemon:
    def __init__(
        self, settings: DaemonSettings, path: Path, listener: socket.socket, idle_timeout_s: float
    ) -> None:
        self.settings = settings
        self.path = path
        self.warm = WarmState(settings, socket_path=str(path))
        self._listener = listener
        self._idle_timeout_s = idle_timeout_s
        self._connections: dict[asyncio.Task[None], Connection] = {}
        self._ids = itertools.count(1)
        self._idle: asyncio.TimerHandle | None = None
        self._stopped: asyncio.Future[str] | None = None

    def stop(self, reason: str) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(reason)

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, self.stop, f"signal {signal.Signals(signum).name}")
        self._listener.setblocking(False)
        accepting = asyncio.ensure_future(self._accept_loop())
        self._arm_idle()
        log.info("shared daemon pid %d listening on %s", os.getpid(), self.path)
        try:
            reason = await self._stopped
        finally:
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)
        log.info("stopping: %s", reason)
        accepting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await accepting
        self._listener.close()
        remove_socket(self.path)  # nobody new connects to a daemon that is going away
        for connection in self._connections.values():
            connection.stop(f"daemon stopping ({reason})")
        if self._connections:
            await asyncio.wait(list(self._connections))
        await self.warm.aclose()
        return 0

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(self._listener)
            except OSError as exc:  # e.g. EMFILE: keep serving the clients we have
                log.error("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            uid = _peer_uid(sock)
            if uid is not None and uid != os.getuid():
                log.warning("refused a connection from uid %d", uid)
                sock.close()
                continue
            sock.setblocking(True)
            self._open(sock)

    def _open(self, sock: socket.socket) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        server, runtime = build_server(self.settings, warm=self.warm)
        protocol = server.protocol
        assert isinstance(protocol, LoreProtocol)
        connection = Connection(protocol, sock, f"conn-{next(self._ids)}")
        task = asyncio.ensure_future(connection.serve(on_stop=lambda reason: runtime.aclose()))
        self._connections[task] = connection
        task.add_done_callback(self._closed)
        log.info("%s: connected (%d open)", connection.name, len(self._connections))

    def _closed(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("a connection failed", exc_info=exc)
        if not self._connections:
            self._arm_idle()

    def _arm_idle(self) -> None:
        if self._idle_timeout_s <= 0 or self._connections or self._idle is not None:
            return
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._idle_timeout_s, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle = None
        if not self._connections:
            self.stop(f"idle for {self._idle_timeout_s:g} s with no connection")


def run_socket(settings: DaemonSettings, path: Path, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> int:
    """Take the lock and the socket, serve until stopped; raises ``DaemonError`` when refused."""
    lock = DaemonLock.acquire(path)
    try:
        listener = bind_socket(path)
        try:
            return asyncio.run(SocketDaemon(settings, path, listener, idle_timeout_s).serve())
        finally:
            listener.close()
            remove_socket(path)
    finally:
        lock.release()
