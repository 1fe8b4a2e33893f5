"""The daemon's warm state, built lazily on first need and reused by every request.

Nothing heavy happens at start-up: ``initialize`` answers at once, and a request that only reads
(``lore/status``, ``lore/syncRuns``) needs the configuration and the database but not the token.
The engine (token → GitLab client) is built on the first request that talks to GitLab. A failed
build is not cached: fix the config file or export the token, and the next request succeeds.

The warm pieces live in ``WarmState`` (one per process: shared by every connection of the socket
daemon); each connection's ``Runtime`` holds its own in-flight request tasks, so ``shutdown``, a
disconnect and SIGTERM cancel exactly that connection's runs and *wait* until each has recorded
``cancelled`` and released its locks.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import apsw
from pygls.lsp.server import LanguageServer

from lore_daemon.config import Config, load_config, read_token
from lore_daemon.logsetup import redact
from lore_daemon.store import ledger
from lore_daemon.store.connection import Database
from lore_daemon.timeutil import now_ms

if TYPE_CHECKING:
    from lore_daemon.embedding.service import EmbeddingService
    from lore_daemon.engine import Engine
    from lore_daemon.services.spec import MethodSpec

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class DaemonSettings:
    """Process-level choices from the command line; ``overrides`` uses the config file's keys."""

    config_path: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


ENGINE_MODULES = ("lore_daemon.sync.surgical", "lore_daemon.sync.standard")


def _close_abandoned(conn: apsw.Connection, stale_ms: int) -> list[str]:
    return ledger.mark_abandoned(conn, stale_ms=stale_ms, now_ms=now_ms())


def _freeze_warm_objects() -> None:
    """Move every object alive now (modules, the warm pieces just built) out of the collector's
    reach. A full collection walked them all — ~60k objects of pygls, lsprotocol, httpx and the
    sync modules, 40-90 ms with the GIL held, several times per standard sync — and every request
    waited. Called right after the database opens and after the engine is built."""
    gc.freeze()


class WarmState:
    """Configuration, database and engine: built once, shared by every connection of a process.

    Over stdio a process has one connection and one ``WarmState``; the shared socket daemon hands
    the same ``WarmState`` to every per-connection ``Runtime``, which is what keeps it warm.
    """

    def __init__(self, settings: DaemonSettings, *, socket_path: str | None = None) -> None:
        self.settings = settings
        self.socket_path = socket_path
        self.started_at_ms = now_ms()
        self._started = time.monotonic()
        self._session_options: Any = None
        self._config: Config | None = None
        self._db: Database | None = None
        self._engine: Engine | None = None
        self._embeddings: EmbeddingService | None = None
        self._db_opening: asyncio.Task[Database] | None = None
        self._engine_building: asyncio.Task[Engine] | None = None

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)

    def set_session_options(self, options: Any) -> None:
        """``initializationOptions``: config overrides for this session, validated on first use."""
        self._session_options = options
        if self._db is None:
            self._config = None  # not materialised yet: the next load sees the session options
        elif options is not None:
            log.warning("initializationOptions came after the store was opened; they apply after a restart")

    def _overrides(self) -> Any:
        session = self._session_options
        if session is None:
            return dict(self.settings.overrides)
        if not isinstance(session, Mapping):
            return session  # load_config rejects it with CONFIG_INVALID
        return _deep_merge(self.settings.overrides, session)

    # ---------------------------------------------------------------------------- warm state

    def config(self) -> Config:
        """The configuration (token not required). Raises ``ConfigError``; retried on next call."""
        if self._config is None:
            self._config = load_config(
                self.settings.config_path,
                env=self.settings.env,
                overrides=self._overrides(),
                require_token=False,
            )
        return self._config

    @property
    def loaded_config(self) -> Config | None:
        return self._config

    def embeddings(self) -> EmbeddingService:
        """The process's embedding service (provider loaded on first use); imports numpy: call it
        off the event loop the first time."""
        if self._embeddings is None:
            from lore_daemon.embedding.service import EmbeddingService

            self._embeddings = EmbeddingService(self.config().embedding, self.settings.env)
        return self._embeddings

    async def database(self) -> Database:
        """The open database; the first open migrates and closes runs of dead processes.

        The open runs as its own task, shielded from the requester: a request cancelled while
        the database opens must not leave a half-built writer thread behind (nor let the next
        request open a second writer). Concurrent first requests share the one open.
        """
        if self._db is not None:
            return self._db
        if self._db_opening is None:
            self._db_opening = asyncio.ensure_future(self._open_database(self.config()))
            self._db_opening.add_done_callback(self._opened)
        return await asyncio.shield(self._db_opening)

    async def _open_database(self, config: Config) -> Database:
        db = Database(config.db_path)
        await asyncio.to_thread(db.open)
        try:
            closed = await db.write(_close_abandoned, config.sync.stale_lock_ms)
        except BaseException:
            await asyncio.to_thread(db.close)
            raise
        if closed:
            log.warning("marked %d abandoned run(s) failed: %s", len(closed), ", ".join(closed))
        return db

    def _opened(self, task: asyncio.Task[Database]) -> None:
        self._db_opening = None
        if task.cancelled():
            return
        if task.exception() is None:  # (retrieving it also silences "never retrieved")
            self._db = task.result()
            _freeze_warm_objects()

    async def engine(self) -> Engine:
        """The engine; needs the token (TOKEN_NOT_SET otherwise). Shared by every run.

        Built once, in a shielded task like the database, and on a worker thread: importing
        httpx and the sync modules and creating the HTTP client take ~0.3 s that would otherwise
        stall the event loop (and every lore/status or lore/syncRuns waiting on it).
        """
        if self._engine is not None:
            return self._engine
        if self._engine_building is None:
            self._engine_building = asyncio.ensure_future(self._build_engine())
            self._engine_building.add_done_callback(self._engine_built)
        return await asyncio.shield(self._engine_building)

    async def _build_engine(self) -> Engine:
        db = await self.database()
        return await asyncio.to_thread(self._make_engine, self.config(), db)

    def _make_engine(self, config: Config, db: Database) -> Engine:
        from lore_daemon.engine import Engine
        from lore_daemon.sync.locking import make_owner

        for name in ENGINE_MODULES:  # the engine imports these lazily, per run: do it now
            importlib.import_module(name)
        token = read_token(config, self.settings.env)
        redact(token.reveal())  # defence in depth: the token is never logged anyway
        engine = Engine.create(config, db, token.reveal(), owner=make_owner(), embeddings=self.embeddings())
        log.info("engine ready for %s", config.gitlab.base_url)
        return engine

    def _engine_built(self, task: asyncio.Task[Engine]) -> None:
        self._engine_building = None
        if not task.cancelled() and task.exception() is None:
            self._engine = task.result()
            _freeze_warm_objects()

    async def aclose(self) -> None:
        """Close the GitLab client and the database once pending builds finish (idempotent)."""
        for pending in (self._engine_building, self._db_opening):
            if pending is not None:  # still being built: let it finish, then close it
                await asyncio.wait([pending])
        engine, db = self._engine, self._db
        self._engine = self._db = None
        embeddings, self._embeddings = self._embeddings, None
        if engine is not None:
            await engine.aclose()
        elif db is not None:
            await asyncio.to_thread(db.close)
        if embeddings is not None and engine is None:
            embeddings.close()


class Runtime:
    """One connection's view: its pygls server, its in-flight requests, and the shared warm state.

    ``warm`` is None over stdio (the runtime owns a private one and closes it in ``aclose``); the
    socket daemon passes its process-wide ``WarmState`` and closes it itself, after every
    connection has drained.
    """

    def __init__(
        self,
        ls: LanguageServer,
        methods: Sequence[MethodSpec],
        settings: DaemonSettings,
        warm: WarmState | None = None,
    ) -> None:
        self.ls = ls
        self.methods = tuple(methods)
        self.settings = settings
        self._owns_warm = warm is None
        self.warm = warm if warm is not None else WarmState(settings)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False

    @property
    def started_at_ms(self) -> int:
        return self.warm.started_at_ms

    @property
    def socket_path(self) -> str | None:
        return self.warm.socket_path

    def uptime_ms(self) -> int:
        return self.warm.uptime_ms()

    def set_session_options(self, options: Any) -> None:
        """Per-session config overrides; a shared daemon ignores them (its state serves everyone)."""
        if self._owns_warm:
            self.warm.set_session_options(options)
        elif options is not None:
            log.warning("initializationOptions ignored: a shared daemon keeps the config it started with")

    def config(self) -> Config:
        return self.warm.config()

    @property
    def loaded_config(self) -> Config | None:
        return self.warm.loaded_config

    async def database(self) -> Database:
        return await self.warm.database()

    def embeddings(self) -> EmbeddingService:
        return self.warm.embeddings()

    async def engine(self) -> Engine:
        return await self.warm.engine()

    # ---------------------------------------------------------------------------- tasks

    def track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)

    def untrack(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, *, exclude: asyncio.Task[Any] | None = None) -> None:
        """Cancel every in-flight request and wait for each to finish its cleanup."""
        self.stopping = True
        tasks = [t for t in self._tasks if t is not exclude and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            log.info("cancelling %d in-flight request(s)", len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
            if pending:
                log.error("%d request(s) did not stop within %.0f s", len(pending), DRAIN_TIMEOUT_S)

    async def aclose(self) -> None:
        """Drain this connection's requests; close the warm state too when this runtime owns it."""
        await self.drain()
        if self._owns_warm:
            await self.warm.aclose()
