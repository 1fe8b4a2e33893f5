"""The JSON-RPC server: builds the pygls LanguageServer and hands each method to its service.

Thin on purpose. Protocol-level fixes live in ``rpc/``, request handling in ``services/``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lore_daemon import __version__
from lore_daemon.rpc.lsp import LoreProtocol, raw_params_converter
from lore_daemon.rpc.stdio import serve_stdio
from lore_daemon.services.catalog import METHODS
from lore_daemon.services.handler import make_handler
from lore_daemon.services.runtime import DaemonSettings, Runtime, WarmState
from lore_daemon.services.spec import MethodSpec

log = logging.getLogger(__name__)

# pygls' pool is unused by our async handlers, but keep it big enough that nothing a library
# schedules there could ever starve it.
MAX_WORKERS = 4


def build_server(
    settings: DaemonSettings, methods: Sequence[MethodSpec] = METHODS, *, warm: WarmState | None = None
) -> tuple[LanguageServer, Runtime]:
    """One pygls server per client; ``warm`` is the shared daemon's process-wide state, if any."""
    server = LanguageServer(
        "lore-daemon",
        __version__,
        text_document_sync_kind=types.TextDocumentSyncKind.None_,
        converter_factory=raw_params_converter,
        protocol_cls=LoreProtocol,
        max_workers=MAX_WORKERS,
    )
    runtime = Runtime(server, methods, settings, warm)
    for spec in methods:
        server.feature(spec.name)(make_handler(runtime, spec))

    @server.feature(types.INITIALIZE)
    def on_initialize(params: types.InitializeParams) -> None:
        runtime.set_session_options(params.initialization_options)

    @server.feature(types.SHUTDOWN)
    async def on_shutdown(*_: Any) -> None:
        # Cancel this client's in-flight runs and wait until each has recorded `cancelled` and
        # released its locks, so the shutdown response really means "nothing of mine runs any more".
        await runtime.drain()

    return server, runtime


def run_stdio(settings: DaemonSettings, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Serve one client over stdin/stdout until exit, EOF or SIGTERM; returns the exit code."""
    server, runtime = build_server(settings)
    protocol = server.protocol
    assert isinstance(protocol, LoreProtocol)

    async def main() -> int:
        return await serve_stdio(protocol, stdin, stdout, on_stop=lambda reason: runtime.aclose())

    return asyncio.run(main())
