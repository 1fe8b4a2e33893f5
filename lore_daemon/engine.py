"""The engine: what the daemon's services call. One per daemon process.

It holds the warm pieces a run needs — configuration, the database (one writer thread), the shared
GitLab client (one concurrency limit for every run) — and hands each request to the sync module
that implements it. Runs are cancelled by cancelling the asyncio task that awaits them: the sync
code records the run as ``cancelled``, releases its locks and re-raises ``CancelledError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lore_daemon import protocol
from lore_daemon.config import Config
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.store.connection import Database
from lore_daemon.timeutil import now_ms

ProgressSink = Callable[[protocol.ProgressNotification], None]


def _discard(_: protocol.ProgressNotification) -> None:
    return None


@dataclass
class Engine:
    config: Config
    db: Database
    gitlab: GitLabClient
    owner: str
    started_at_ms: int = field(default_factory=now_ms)
    # The daemon passes its process-wide service (lore/status reads its health without an engine).
    embeddings: EmbeddingService | None = None

    def __post_init__(self) -> None:
        if self.embeddings is None:
            self.embeddings = EmbeddingService(self.config.embedding)

    async def preflight(
        self, params: protocol.PreflightParams, progress: ProgressSink = _discard
    ) -> protocol.PreflightResult:
        from lore_daemon.sync.surgical import run_preflight

        return await run_preflight(self, params, progress)

    async def sync_surgical(
        self, params: protocol.SyncSurgicalParams, progress: ProgressSink = _discard
    ) -> protocol.SyncResult:
        from lore_daemon.sync.surgical import run_surgical_sync

        return await run_surgical_sync(self, params, progress)

    async def sync_standard(
        self, params: protocol.SyncParams, progress: ProgressSink = _discard
    ) -> protocol.SyncResult:
        from lore_daemon.sync.standard import run_standard_sync

        return await run_standard_sync(self, params, progress)

    async def aclose(self) -> None:
        await self.gitlab.aclose()
        if self.embeddings is not None:
            self.embeddings.close()
        self.db.close()
