"""A small JSON-RPC 2.0 endpoint over LSP base-protocol framing (``Content-Length`` headers).

It is deliberately independent of pygls: the client must stay light to import (the bridge runs once
per shell command) and must see every frame — responses, ``lore/progress`` and ``$/progress`` — in
order. Requests are futures keyed by id; cancelling the awaiting task sends ``$/cancelRequest``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import msgspec

NotificationHandler = Callable[[str, Any], None]


class RpcError(Exception):
    """A JSON-RPC error response. ``data`` is the daemon's RobotError dict when it sent one."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def robot_code(self) -> str | None:
        return self.data.get("code") if isinstance(self.data, dict) else None


class ConnectionClosed(Exception):
    """The peer closed the stream before answering. ``sent`` is False when the request never left
    (the connection was already gone), so sending it again elsewhere cannot run it twice."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """Read one framed message body; ``None`` at a clean end of stream."""
    length: int | None = None
    while True:
        line = await reader.readline()
        if not line:
            return None
        line = line.strip()
        if not line:
            break
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ConnectionClosed("frame without Content-Length")
    return await reader.readexactly(length)


def encode_frame(message: dict[str, Any]) -> bytes:
    body = msgspec.json.encode(message)
    return b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


class JsonRpcEndpoint:
    """One connection. ``start()`` launches the reader task; server requests get a null result."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter | asyncio.WriteTransport | Any,
        on_notification: NotificationHandler | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[Any]] = {}
        self._handlers: list[NotificationHandler] = [on_notification] if on_notification else []
        self._reader_task: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    def add_notification_handler(self, handler: NotificationHandler) -> None:
        self._handlers.append(handler)

    def remove_notification_handler(self, handler: NotificationHandler) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def start(self) -> None:
        self._reader_task = asyncio.ensure_future(self._read_loop())

    async def _send(self, message: dict[str, Any]) -> None:
        self._writer.write(encode_frame(message))
        drain = getattr(self._writer, "drain", None)
        if drain is not None:
            await drain()

    async def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    async def request(self, method: str, params: Any = None) -> Any:
        msg_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            if self.closed.is_set():
                raise ConnectionClosed("the daemon closed the connection", sent=False)
            try:
                await self._send(message)
            except (ConnectionError, RuntimeError) as exc:  # the transport is gone: never delivered
                raise ConnectionClosed(f"the connection is closed ({exc})", sent=False) from exc
            return await fut
        except asyncio.CancelledError:
            if not self.closed.is_set():
                try:
                    await self.notify("$/cancelRequest", {"id": msg_id})
                except (ConnectionError, RuntimeError):
                    pass
            raise
        finally:
            self._pending.pop(msg_id, None)

    async def _read_loop(self) -> None:
        try:
            while True:
                body = await read_frame(self._reader)
                if body is None:
                    break
                self._dispatch(msgspec.json.decode(body))
        except (ConnectionClosed, asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError):
            pass
        finally:
            self.closed.set()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionClosed("the daemon closed the connection"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message:
            if "id" in message:  # a server->client request (e.g. workDoneProgress/create)
                reply = {"jsonrpc": "2.0", "id": message["id"], "result": None}
                task = asyncio.ensure_future(self._send(reply))
                self._replies.add(task)
                task.add_done_callback(self._replies.discard)
                return
            for handler in list(self._handlers):
                handler(message["method"], message.get("params"))
            return
        fut = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if fut is None or fut.done():
            return
        if "error" in message:
            err = message["error"]
            fut.set_exception(RpcError(err.get("code", 0), err.get("message", ""), err.get("data")))
        else:
            fut.set_result(message.get("result"))

    async def aclose(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):
                pass
