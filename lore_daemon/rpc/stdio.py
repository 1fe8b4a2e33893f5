"""The stdio transport: one reader thread, writes on the event loop, a clean stop on every exit path.

Why not pygls' ``start_io``: it reads stdin on the same thread pool handlers may use, never
answers a body that fails to parse, calls ``sys.exit`` from inside a handler on ``exit``, and has
no hook to drain in-flight runs on EOF or SIGTERM. Here a dedicated daemon thread reads whole
frames and posts them to the loop (one wake-up per message), and ``serve_stdio`` returns an exit
code only after the caller's ``on_stop`` coroutine has cancelled and awaited every run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from pygls.exceptions import JsonRpcException

from lore_daemon.rpc.envelope import check_envelope
from lore_daemon.rpc.errors import protocol_failure
from lore_daemon.rpc.framing import FdStream, Frame, FrameReader, FramingProblem
from lore_daemon.rpc.lsp import LoreProtocol

log = logging.getLogger(__name__)


class _BadJson:
    """A frame whose body is not JSON (or not UTF-8)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _EndOfInput:
    __slots__ = ()


class GuardedWriter:
    """stdout writer that turns a closed or broken pipe into a stop request instead of an error."""

    def __init__(self, stream: BinaryIO, on_broken: Callable[[], None]) -> None:
        self._stream = stream
        self._on_broken = on_broken
        self._broken = False

    def write(self, data: bytes) -> None:
        if self._broken:
            return
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            self._broken = True
            log.info("stdout is closed; stopping")
            self._on_broken()

    def close(self) -> None:
        return None


def read_loop(reader: FrameReader, post: Callable[[object], None]) -> None:
    """Thread body: read frames until end of input; decode JSON here, off the event loop."""
    try:
        while True:
            item = reader.read()
            if item is None:
                break
            if isinstance(item, Frame):
                try:
                    post(json.loads(item.body))
                except (ValueError, RecursionError) as exc:
                    post(_BadJson(type(exc).__name__))
            else:
                post(item)
    except Exception:
        log.exception("frame reader failed")
    post(_EndOfInput())


class Dispatcher:
    """Runs on the loop: answers framing/JSON/envelope problems, hands the rest to pygls."""

    def __init__(self, protocol: LoreProtocol, on_eof: Callable[[], None]) -> None:
        self._protocol = protocol
        self._on_eof = on_eof

    def __call__(self, item: object) -> None:
        if isinstance(item, _EndOfInput):
            self._on_eof()
        elif isinstance(item, FramingProblem):
            log.warning("framing error: %s", item.reason)
            self._reply_error(None, protocol_failure("PARSE_ERROR", f"Framing error: {item.reason}"))
        elif isinstance(item, _BadJson):
            log.warning("a message body is not valid JSON (%s)", item.reason)
            failure = protocol_failure("PARSE_ERROR", "Parse error: the body is not valid JSON")
            self._reply_error(None, failure)
        else:
            self._dispatch(item)

    def _dispatch(self, message: Any) -> None:
        problem = check_envelope(message)
        if problem is not None:
            log.warning("invalid JSON-RPC message: %s", problem.reason)
            if problem.must_reply:
                self._reply_error(problem.reply_id, protocol_failure("INVALID_REQUEST", problem.reason))
            return
        try:
            structured = self._protocol.structure_message(message)
        except JsonRpcException as exc:
            if "method" in message and "id" in message:
                self._reply_error(message["id"], exc)
            return
        try:
            self._protocol.handle_message(structured)
        except Exception:
            log.exception("failed to handle a %r message", message.get("method", "response"))

    def _reply_error(self, msg_id: int | str | None, error: JsonRpcException) -> None:
        # JSON-RPC answers an unidentifiable message with id null.
        self._protocol._send_response(msg_id, error=error.to_response_error())


async def serve_stdio(
    protocol: LoreProtocol,
    stdin: BinaryIO,
    stdout: BinaryIO,
    on_stop: Callable[[str], Awaitable[None]],
) -> int:
    """Serve until ``exit``, end of input, a broken stdout or SIGTERM/SIGINT; return the exit code.

    ``on_stop(reason)`` runs before returning, while the loop is still alive, so in-flight runs
    can be cancelled and awaited (ledger ``cancelled``, locks released).
    """
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[tuple[int, str]] = loop.create_future()

    def stop(code: int, reason: str) -> None:
        if not stopped.done():
            stopped.set_result((code, reason))

    def post(item: object) -> None:
        try:
            loop.call_soon_threadsafe(dispatch, item)
        except RuntimeError:
            pass  # the loop is already closed: the daemon is exiting

    dispatch = Dispatcher(protocol, on_eof=lambda: stop(0, "end of input on stdin"))
    protocol.exit_hook = lambda code: stop(code, "exit notification")
    protocol.set_writer(GuardedWriter(stdout, lambda: stop(0, "stdout closed")))
    thread = threading.Thread(
        target=read_loop, args=(FrameReader(FdStream(stdin.fileno())), post), name="lore-stdin", daemon=True
    )
    thread.start()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop, 0, f"signal {signal.Signals(signum).name}")
    try:
        code, reason = await stopped
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    log.info("stopping: %s", reason)
    await on_stop(reason)
    return code
