"""A run's progress sink: ``lore/progress`` always, mirrored as LSP ``$/progress`` when asked for.

Mirroring happens when the request carried a ``workDoneToken`` (the client created it: used
directly) or the client declared ``window.workDoneProgress`` (the daemon creates a token with
``window/workDoneProgress/create``, waiting at most ``CREATE_TIMEOUT_S`` so a silent client never
stalls a run). A ``window/workDoneProgress/cancel`` for the token cancels the run's task, which
ends the request with -32800 like ``$/cancelRequest``. The token is forgotten after ``end``
(pygls keeps tokens forever otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import Future
from typing import Any

import msgspec
from lsprotocol import types
from pygls.lsp.server import LanguageServer

from lore_daemon import protocol
from lore_daemon.rpc.lsp import PROGRESS_NOTIFICATION

log = logging.getLogger(__name__)

CREATE_TIMEOUT_S = 2.0
Token = str | int


def client_supports_work_done_progress(ls: LanguageServer) -> bool:
    caps = getattr(ls.protocol, "client_capabilities", None)  # absent before initialize
    window = getattr(caps, "window", None)
    return bool(getattr(window, "work_done_progress", False))


async def _server_token(ls: LanguageServer) -> Token | None:
    token = f"lore-{uuid.uuid4().hex}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), CREATE_TIMEOUT_S)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # timeout, or the client refused: progress stays lore/progress only
        log.info("window/workDoneProgress/create failed (%s); not mirroring progress", type(exc).__name__)
        return None
    return token


def _percentage(note: protocol.ProgressNotification, phases: tuple[str, ...]) -> int | None:
    if note.phase not in phases:
        return None
    done = phases.index(note.phase) + (1 if note.event == "end" else 0)
    return min(100, done * 100 // len(phases))


class ProgressReporter:
    """Callable progress sink for one request; ``close`` ends the LSP progress (idempotent)."""

    def __init__(
        self, ls: LanguageServer, token: Token | None, title: str, phases: tuple[str, ...]
    ) -> None:
        self._ls = ls
        self._token = token
        self._title = title
        self._phases = phases
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._open = False

    @classmethod
    async def start(
        cls,
        ls: LanguageServer,
        params: protocol._Params,
        *,
        title: str,
        phases: tuple[str, ...],
        task: asyncio.Task[Any] | None,
    ) -> ProgressReporter:
        token: Token | None = params.work_done_token
        if token is None and client_supports_work_done_progress(ls):
            token = await _server_token(ls)
        reporter = cls(ls, token, title, phases)
        reporter._begin(task)
        return reporter

    @property
    def token(self) -> Token | None:
        return self._token

    def _begin(self, task: asyncio.Task[Any] | None) -> None:
        if self._token is None:
            return
        begin = types.WorkDoneProgressBegin(title=self._title, cancellable=True, percentage=0)
        self._ls.work_done_progress.begin(self._token, begin)
        self._open = True
        cancel_future: Future[Any] | None = self._ls.work_done_progress.tokens.get(self._token)
        if task is not None and cancel_future is not None:
            loop = self._loop

            def on_cancel(fut: Future[Any]) -> None:
                if fut.cancelled() and not task.done():
                    log.info("work-done progress %r cancelled by the client", self._token)
                    loop.call_soon_threadsafe(task.cancel)

            cancel_future.add_done_callback(on_cancel)

    def __call__(self, note: protocol.ProgressNotification) -> None:
        if threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._emit, note)
        else:
            self._emit(note)

    def _emit(self, note: protocol.ProgressNotification) -> None:
        if self._token is not None:
            note = msgspec.structs.replace(note, work_done_token=self._token)
        self._ls.protocol.notify(PROGRESS_NOTIFICATION, msgspec.to_builtins(note))
        if self._open and self._token is not None:
            text = f"{note.phase} {note.event}" + (f": {note.message}" if note.message else "")
            report = types.WorkDoneProgressReport(message=text, percentage=_percentage(note, self._phases))
            self._ls.work_done_progress.report(self._token, report)

    def close(self, message: str) -> None:
        if not self._open or self._token is None:
            return
        self._open = False
        self._ls.work_done_progress.end(self._token, types.WorkDoneProgressEnd(message=message))
        self._ls.work_done_progress.tokens.pop(self._token, None)
