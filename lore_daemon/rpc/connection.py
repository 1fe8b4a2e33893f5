"""One client of the shared daemon over a Unix socket, served like stdio is.

The connection reuses the stdio transport's parts — the defensive ``FrameReader`` on a reader
thread, the ``Dispatcher`` on the loop — so a socket client gets exactly the answers a stdio
client gets. Writes go through a writer thread: the socket stays blocking (the reader thread
needs that), and a client that stops reading must never stall the event loop every other
connection shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import socket
import threading
from collections.abc import Awaitable, Callable

from lore_daemon.rpc.framing import FdStream, FrameReader
from lore_daemon.rpc.lsp import LoreProtocol
from lore_daemon.rpc.stdio import Dispatcher, read_loop

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 5.0


class SocketWriter:
    """Queues frames for a writer thread; a broken peer becomes a stop request, never an error."""

    def __init__(self, sock: socket.socket, on_broken: Callable[[], None], name: str) -> None:
        self._sock = sock
        self._on_broken = on_broken
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        self._queue.put(data)

    def close(self) -> None:
        return None  # pygls may call this; the connection decides when the socket closes

    def finish(self) -> None:
        """Flush what is queued, then stop the thread (blocking: call it off the loop)."""
        self._queue.put(None)
        self._thread.join(FLUSH_TIMEOUT_S)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._sock.sendall(data)
            except OSError:
                self._on_broken()
                return


class Connection:
    """Serves one socket until ``exit``, the client's disconnect, a broken socket or ``stop()``."""

    def __init__(self, protocol: LoreProtocol, sock: socket.socket, name: str) -> None:
        self.name = name
        self._protocol = protocol
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._stopped: asyncio.Future[str] = self._loop.create_future()

    def stop(self, reason: str) -> None:
        """Ask the connection to end (idempotent; loop thread only)."""
        if not self._stopped.done():
            self._stopped.set_result(reason)

    def _stop_threadsafe(self, reason: str) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is exiting
            self._loop.call_soon_threadsafe(self.stop, reason)

    async def serve(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        """Run until stopped; ``on_stop`` (drain this connection's runs) runs before the close."""
        dispatch = Dispatcher(self._protocol, on_eof=lambda: self.stop("client disconnected"))

        def post(item: object) -> None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(dispatch, item)

        writer = SocketWriter(self._sock, lambda: self._stop_threadsafe("socket broken"), self.name)
        self._protocol.exit_hook = lambda code: self.stop(f"exit notification (code {code})")
        self._protocol.set_writer(writer)
        reader = FrameReader(FdStream(self._sock.fileno()))
        thread = threading.Thread(
            target=read_loop, args=(reader, post), name=f"{self.name}-reader", daemon=True
        )
        thread.start()
        reason = await self._stopped
        log.info("%s: closing (%s)", self.name, reason)
        try:
            await on_stop(reason)  # cancelled runs still answer -32800 while the socket is open
        finally:
            await asyncio.to_thread(writer.finish)
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread with end of input
            await asyncio.to_thread(thread.join, FLUSH_TIMEOUT_S)
            self._sock.close()
