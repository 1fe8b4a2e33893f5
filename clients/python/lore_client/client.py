"""Async Python client for lore-daemon, typed with the daemon's own protocol Structs.

::

    async with LoreClient.connect() as c:
        result = await c.sync_surgical(project="group/proj", issues=[12], on_progress=print)
        issue = await c.get("group/proj#12", maxAgeMs=60_000)
        page = await c.list(state="opened", labels=["bug"])
        found = await c.search("flaky test", kind="issue")

``connect()`` spawns a private daemon over stdio (``python -m lore_daemon``); ``connect_shared()``
talks to the shared warm daemon on a Unix socket (``lore_client.shared`` starts it) and
reconnects when that daemon restarts. Every method takes the protocol's own field names
(``issueUrls=``, ``maxAgeMs=``) as well as their Python spelling (``issue_urls=``). Each request
gets its own work-done token, so ``on_progress`` receives exactly that request's
``lore/progress`` notifications even when several requests are in flight. Cancelling the
awaiting task sends ``$/cancelRequest``; the daemon records the run as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from lore_client.rpc import ConnectionClosed, JsonRpcEndpoint, RpcError
from lore_daemon import protocol, protocol_read

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
ProgressCallback = Callable[[protocol.ProgressNotification], None]
Connector = Callable[[], Awaitable[tuple[JsonRpcEndpoint, asyncio.StreamWriter]]]

__all__ = ["ConnectionClosed", "LoreClient", "RpcError", "params"]

# Methods that change nothing when sent twice: after a lost connection they are sent again on
# the new one. A sync whose connection died may have run (the daemon cancels it); it is not.
RESENDABLE = frozenset({
    "lore/preflight", "lore/get", "lore/list", "lore/search", "lore/syncRuns", "lore/status",
    "lore/robotDocs",
})


def params(struct_type: type[S], given: Mapping[str, Any]) -> S:
    """``struct_type`` built from keyword arguments named either way: the protocol's wire names
    (``issueUrls``, ``maxAgeMs``) or the Python ones (``issue_urls``, ``max_age_ms``).

    Raises ``TypeError`` for an unknown name or one given twice (as Python does for keyword
    arguments) and ``msgspec.ValidationError`` for a value of the wrong type or range.
    """
    fields = msgspec.structs.fields(struct_type)
    wire_of = {f.name: f.encode_name for f in fields}
    wire_names = set(wire_of.values())
    raw: dict[str, Any] = {}
    for key, value in given.items():
        wire = wire_of.get(key, key if key in wire_names else None)
        if wire is None:
            known = ", ".join(sorted(wire_names))
            raise TypeError(f"{struct_type.__name__} has no field {key!r} (known: {known})")
        if wire in raw:
            raise TypeError(f"{struct_type.__name__} field {wire!r} given twice")
        raw[wire] = msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value
    return msgspec.convert(raw, struct_type)


class LoreClient:
    def __init__(self, endpoint: JsonRpcEndpoint, process: asyncio.subprocess.Process | None = None) -> None:
        self._endpoint = endpoint
        self._process = process
        self._socket_writer: asyncio.StreamWriter | None = None
        self._connector: Connector | None = None  # set for a shared daemon: how to reconnect
        self._initialization_options: dict[str, Any] | None = None
        self.reconnects = 0
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
        cls,
        socket_path: str | os.PathLike[str],
        *,
        initialization_options: dict[str, Any] | None = None,
        start: bool = False,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> AsyncIterator[LoreClient]:
        """Connect to the shared daemon's socket; closing disconnects (the daemon stays up).

        When the daemon restarts, the next request opens a new connection (and a request that
        only reads, lost with the old one, is sent again). With ``start`` the daemon is started
        when nothing answers — at first and after a stop — with ``env`` and ``command`` as
        ``lore_client.shared.ensure_daemon`` takes them. A disconnect cancels this client's
        in-flight runs only. ``initialization_options`` are ignored by a shared daemon: it keeps
        the configuration it started with.
        """
        sock = Path(os.fspath(socket_path))

        async def open_socket() -> tuple[JsonRpcEndpoint, asyncio.StreamWriter]:
            if start:
                from lore_client.shared import ensure_daemon  # only when it may have to start one

                await asyncio.to_thread(ensure_daemon, sock, command=command, env=env)
            reader, writer = await asyncio.open_unix_connection(os.fspath(sock))
            endpoint = JsonRpcEndpoint(reader, writer)
            endpoint.start()
            return endpoint, writer

        endpoint, writer = await open_socket()
        client = cls(endpoint)
        client._socket_writer = writer
        client._connector = open_socket
        client._initialization_options = initialization_options
        try:
            await client.initialize(initialization_options)
            yield client
        finally:
            await client.close()

    async def _reconnect(self) -> None:
        """A new connection to the shared daemon (after it restarted), handshake included."""
        assert self._connector is not None
        old, old_writer = self._endpoint, self._socket_writer
        endpoint, writer = await self._connector()
        endpoint.add_notification_handler(self._on_notification)
        self._endpoint, self._socket_writer = endpoint, writer
        if old_writer is not None:
            old_writer.close()
        await old.aclose()
        self.reconnects += 1
        await self.initialize(self._initialization_options)

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
            result = await self._request(method, raw)
        finally:
            if token is not None:
                self._progress.pop(token, None)
        return msgspec.convert(result, result_type)

    async def _request(self, method: str, raw: dict[str, Any]) -> Any:
        """One request; on a shared daemon that went away, reconnect and (when safe) resend once."""
        if self._connector is not None and self._endpoint.closed.is_set():
            await self._reconnect()
        try:
            return await self._endpoint.request(method, raw)
        except ConnectionClosed as lost:
            if self._connector is None or (lost.sent and method not in RESENDABLE):
                raise
        await self._reconnect()
        return await self._endpoint.request(method, raw)

    async def preflight(
        self, on_progress: ProgressCallback | None = None, **targets: Any
    ) -> protocol.PreflightResult:
        sent = params(protocol.PreflightParams, targets)
        return await self.call("lore/preflight", sent, protocol.PreflightResult, on_progress)

    async def sync_surgical(
        self, on_progress: ProgressCallback | None = None, **targets: Any
    ) -> protocol.SyncResult:
        sent = params(protocol.SyncSurgicalParams, targets)
        return await self.call("lore/syncSurgical", sent, protocol.SyncResult, on_progress)

    async def sync(self, on_progress: ProgressCallback | None = None, **options: Any) -> protocol.SyncResult:
        sent = params(protocol.SyncParams, options)
        return await self.call("lore/sync", sent, protocol.SyncResult, on_progress)

    async def sync_runs(self, **filters: Any) -> protocol.SyncRunsResult:
        sent = params(protocol.SyncRunsParams, filters)
        return await self.call("lore/syncRuns", sent, protocol.SyncRunsResult)

    async def get(
        self, ref: str | None = None, *, on_progress: ProgressCallback | None = None, **target: Any
    ) -> protocol_read.EntityDetail:
        """One issue or MR: ``get("#12")``, ``get(url=...)``, ``get(kind="mr", iid=3)``; with
        ``maxAgeMs`` a missing or older copy is synced first (``on_progress`` sees that run)."""
        if ref is not None:
            target["ref"] = ref
        sent = params(protocol_read.GetParams, target)
        return await self.call("lore/get", sent, protocol_read.EntityDetail, on_progress)

    async def search(self, query: str, **options: Any) -> protocol_read.SearchResult:
        sent = params(protocol_read.SearchParams, {"query": query, **options})
        return await self.call("lore/search", sent, protocol_read.SearchResult)

    async def list_all(self, **filters: Any) -> AsyncIterator[protocol_read.EntitySummary]:
        """Every item ``list`` matches, page after page (following ``nextCursor``)."""
        cursor: str | None = None
        while True:
            page = await self.list(**filters, **({"cursor": cursor} if cursor else {}))
            for item in page.items:
                yield item
            cursor = page.next_cursor
            if cursor is None:
                return

    async def status(self) -> protocol.StatusResult:
        return await self.call("lore/status", {}, protocol.StatusResult)

    async def robot_docs(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("lore/robotDocs", {}, dict)
        return result

    # Last: inside the class body, the name ``list`` is this method from here on.
    async def list(self, **filters: Any) -> protocol_read.ListResult:
        """One page of issues/MRs by filters; pass the result's ``nextCursor`` as ``cursor``."""
        sent = params(protocol_read.ListParams, filters)
        return await self.call("lore/list", sent, protocol_read.ListResult)
