"""A small asyncio HTTP/1.1 server: keep-alive, Content-Length bodies, and deliberate misbehaviour.

Why not ``http.server``: faults need control over the socket (answer nothing, close early, send
half a body), latency must not cost a thread per request, and one event loop serves many
concurrent keep-alive connections cheaply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

from lore_daemon.sim.app import Reply, SimApp
from lore_daemon.sim.wire import REASONS, Request, Response

log = logging.getLogger(__name__)
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
_STATIC_HEADERS = (
    "Cache-Control: max-age=0, private, must-revalidate\r\n"
    "Vary: Origin\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: SAMEORIGIN\r\n"
)


class BadRequest(Exception):
    pass


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Request line and headers (names lower-cased; repeated headers joined by ', ')."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(lines[0][:100])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("malformed header line")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return parts[0].upper(), parts[1], parts[2], headers


def encode(
    resp: Response,
    *,
    keep_alive: bool,
    date: str,
    head_only: bool = False,
    body_len: int | None = None,
) -> bytes:
    """Status line and headers (``Date`` from the simulator's clock: GitLab's "now"), then the body."""
    reason = REASONS.get(resp.status, "Unknown")
    lines = [
        f"HTTP/1.1 {resp.status} {reason}\r\n",
        f"Date: {date}\r\n",
        f"Content-Type: {resp.content_type}\r\n",
        f"Content-Length: {len(resp.body) if body_len is None else body_len}\r\n",
        _STATIC_HEADERS,
    ]
    lines += [f"{name}: {value}\r\n" for name, value in resp.headers]
    lines.append("Connection: keep-alive\r\n\r\n" if keep_alive else "Connection: close\r\n\r\n")
    head = "".join(lines).encode("latin-1")
    return head if head_only else head + resp.body


class _TrackedProtocol(asyncio.StreamReaderProtocol):
    """Remembers its transport so shutdown can abort connections whose handler never started."""

    def __init__(
        self,
        transports: set[asyncio.BaseTransport],
        reader: asyncio.StreamReader,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        super().__init__(reader, handler)
        self._transports = transports
        self._tracked: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tracked = transport
        self._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tracked is not None:
            self._transports.discard(self._tracked)
        super().connection_lost(exc)


class HttpServer:
    """Serves one ``SimApp`` on an already-bound listening socket."""

    def __init__(self, app: SimApp) -> None:
        self.app = app
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.BaseTransport] = set()
        self._server: asyncio.Server | None = None
        self._listen_fd = -1

    async def listen(self, sock: socket.socket) -> None:
        """Start accepting on ``sock`` (already bound and listening)."""
        loop = asyncio.get_running_loop()
        self._listen_fd = sock.fileno()
        self._server = await loop.create_server(
            lambda: _TrackedProtocol(
                self._transports, asyncio.StreamReader(MAX_HEAD, loop), self.handle_connection
            ),
            sock=sock,
        )

    async def shutdown(self) -> None:
        """Stop accepting, let just-accepted connections finish setting up, then close them all.

        Closing the ``asyncio.Server`` first would make a connection accepted in the same loop
        iteration fail to attach and leak its socket, so accepting stops by removing the reader.
        """
        if self._server is None:
            return
        asyncio.get_running_loop().remove_reader(self._listen_fd)
        await asyncio.sleep(0.02)
        self._server.close()
        await self._close_connections()

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.app.log.connection_opened()
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, BadRequest, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # server shutting down
        finally:
            self.app.log.connection_closed()
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read and answer one request; False when the connection must close."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # the client closed between requests
        try:
            method, target, version, headers = parse_head(head[:-4])
            length = int(headers.get("content-length", "0") or 0)
            if length < 0 or length > MAX_BODY or "chunked" in headers.get("transfer-encoding", "").lower():
                raise BadRequest("unsupported body")
        except (BadRequest, ValueError):
            bad = Response(400, b'{"error":"400 Bad Request"}')
            writer.write(encode(bad, keep_alive=False, date=self.app.clock.http_date()))
            await writer.drain()
            return False
        body = await reader.readexactly(length) if length else b""
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        reply = await self.app.dispatch(Request(method, target, headers, body))
        try:
            return await self._send(reply, reader, writer, keep_alive=keep_alive, head_only=method == "HEAD")
        except ConnectionError:
            self._finish(reply.entry, None, "client_gone")
            return False

    async def _send(
        self,
        reply: Reply,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        keep_alive: bool,
        head_only: bool,
    ) -> bool:
        entry, resp = reply.entry, reply.response
        if reply.mode == "drop":
            self._finish(entry, None, "drop")
            return False
        if reply.mode == "timeout":
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(_until_eof(reader), reply.hold_s)
            self._finish(entry, None, "timeout")
            return False
        assert resp is not None
        date = self.app.clock.http_date()
        if reply.mode == "truncate":
            writer.write(encode(resp, keep_alive=False, date=date, head_only=True, body_len=len(resp.body)))
            writer.write(resp.body[: len(resp.body) // 2])
            await writer.drain()
            self._finish(entry, resp.status, "truncate")
            return False
        if reply.mode == "trickle":
            writer.write(encode(resp, keep_alive=False, date=date, head_only=True))
            for k in range(len(resp.body)):
                if k:
                    await asyncio.sleep(reply.interval_ms / 1000)
                if writer.is_closing() or reader.at_eof():  # the client gave up
                    self._finish(entry, None, "client_gone")
                    return False
                writer.write(resp.body[k : k + 1])
                await writer.drain()
            self._finish(entry, resp.status, "trickle")
            return False
        writer.write(encode(resp, keep_alive=keep_alive, date=date, head_only=head_only))
        await writer.drain()
        self._finish(entry, resp.status, reply.mode)
        return keep_alive

    def _finish(self, entry: dict[str, object] | None, status: int | None, outcome: str) -> None:
        if entry is not None:
            self.app.log.finish(entry, status, outcome)

    async def _close_connections(self) -> None:
        """Cancel every connection task (held 'timeout' ones included); abort any other transport."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for transport in list(self._transports):
            transport.abort()  # type: ignore[attr-defined]
        for _ in range(3):  # let connection_lost callbacks run before the loop closes
            await asyncio.sleep(0)


async def _until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass
