"""Async Python client for lore-daemon, typed with the daemon's own protocol Structs.

::

    async with LoreClient.connect() as c:
        result = await c.sync_surgical(project="group/proj", issues=[12], on_progress=print)

``connect()`` spawns a private daemon over stdio (``python -m lore_daemon``); ``connect_shared()``
talks to the shared warm daemon on a Unix socket (``lore_client.shared`` starts it). Each request gets its
own work-done token, so ``on_progress`` receives exactly that request's ``lore/progress``
notifications even when several requests are in flight. Cancelling the awaiting task sends
``$/cancelRequest``; the daemon records the run as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from lore_client.rpc import JsonRpcEndpoint, RpcError
from lore_daemon import protocol

T = TypeVar("T")
ProgressCallback = Callable[[protocol.ProgressNotification], None]

__all__ = ["LoreClient", "RpcError"]


class LoreClient:
    def __init__(self, endpoint: JsonRpcEndpoint, process: asyncio.subprocess.Process | None = None) -> None:
        self._endpoint = endpoint
        self._process = process
        self._socket_writer: asyncio.StreamWriter | None = None
        self._tokens = itertools.count(1)
        self._progress: dict[str, ProgressCallback] = {}
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}
        endpoint.add_notification_handler(self._on_notification)

    # ----------------------------------------------------------------------------- lifecycle

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        *,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        initialization_options: dict[str, Any] | None = None,
        stderr: int | None = None,
    ) -> AsyncIterator[LoreClient]:
        """Spawn a private daemon over stdio, run the LSP handshake, and shut it down on exit."""
        argv = list(command or [sys.executable, "-m", "lore_daemon"])
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr if stderr is not None else asyncio.subprocess.DEVNULL,
            env=dict(env) if env is not None else dict(os.environ),
        )
        assert proc.stdin is not None and proc.stdout is not None
        endpoint = JsonRpcEndpoint(proc.stdout, proc.stdin)
        endpoint.start()
        client = cls(endpoint, proc)
        try:
            await client.initialize(initialization_options)
            yield client
        finally:
            await client.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def connect_shared(
        cls, socket_path: str | os.PathLike[str], *, initialization_options: dict[str, Any] | None = None
    ) -> AsyncIterator[LoreClient]:
        """Connect to a running shared daemon's socket; closing disconnects (the daemon stays up).

        A disconnect cancels this client's in-flight runs only. ``initialization_options`` are
        ignored by a shared daemon: it keeps the configuration it started with.
        """
        reader, writer = await asyncio.open_unix_connection(os.fspath(socket_path))
        endpoint = JsonRpcEndpoint(reader, writer)
        endpoint.start()
        client = cls(endpoint)
        client._socket_writer = writer
        try:
            await client.initialize(initialization_options)
            yield client
        finally:
            await client.close()

    async def initialize(self, initialization_options: dict[str, Any] | None = None) -> None:
        params: dict[str, Any] = {
            "processId": os.getpid(),
            "rootUri": None,
            "capabilities": {"window": {"workDoneProgress": True}},
            "clientInfo": {"name": "lore_client"},
        }
        if initialization_options is not None:
            params["initializationOptions"] = initialization_options
        result = await self._endpoint.request("initialize", params)
        self.server_info = result.get("serverInfo") or {}
        self.capabilities = result.get("capabilities") or {}
        await self._endpoint.notify("initialized", {})

    async def close(self) -> None:
        """Polite shutdown (``shutdown`` then ``exit``); kills the process if it does not go."""
        proc = self._process
        if proc is not None and proc.returncode is None and not self._endpoint.closed.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._endpoint.request("shutdown"), 5)
                await self._endpoint.notify("exit")
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._socket_writer is not None:
            self._socket_writer.close()
            with contextlib.suppress(OSError):
                await self._socket_writer.wait_closed()
        await self._endpoint.aclose()

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    # ------------------------------------------------------------------------------ requests

    def _on_notification(self, method: str, params: Any) -> None:
        if method != "lore/progress" or not isinstance(params, dict):
            return
        callback = self._progress.get(str(params.get("workDoneToken")))
        if callback is not None:
            callback(msgspec.convert(params, protocol.ProgressNotification))

    async def call(
        self,
        method: str,
        params: msgspec.Struct | dict[str, Any] | None,
        result_type: type[T],
        on_progress: ProgressCallback | None = None,
    ) -> T:
        """Send one request; return its result converted to ``result_type``; raise ``RpcError``."""
        raw: dict[str, Any] = (
            msgspec.to_builtins(params) if isinstance(params, msgspec.Struct) else dict(params or {})
        )
        token = None
        if on_progress is not None:
            token = f"lore-client-{os.getpid()}-{next(self._tokens)}"
            raw["workDoneToken"] = token
            self._progress[token] = on_progress
        try:
            result = await self._endpoint.request(method, raw)
        finally:
            if token is not None:
                self._progress.pop(token, None)
        return msgspec.convert(result, result_type)

    async def preflight(
        self, on_progress: ProgressCallback | None = None, **targets: Any
    ) -> protocol.PreflightResult:
        params = protocol.PreflightParams(**targets)
        return await self.call("lore/preflight", params, protocol.PreflightResult, on_progress)

    async def sync_surgical(
        self, on_progress: ProgressCallback | None = None, **targets: Any
    ) -> protocol.SyncResult:
        params = protocol.SyncSurgicalParams(**targets)
        return await self.call("lore/syncSurgical", params, protocol.SyncResult, on_progress)

    async def sync(self, on_progress: ProgressCallback | None = None, **options: Any) -> protocol.SyncResult:
        return await self.call("lore/sync", protocol.SyncParams(**options), protocol.SyncResult, on_progress)

    async def sync_runs(self, **filters: Any) -> protocol.SyncRunsResult:
        params = protocol.SyncRunsParams(**filters)
        return await self.call("lore/syncRuns", params, protocol.SyncRunsResult)

    async def status(self) -> protocol.StatusResult:
        return await self.call("lore/status", {}, protocol.StatusResult)

    async def robot_docs(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("lore/robotDocs", {}, dict)
        return result
