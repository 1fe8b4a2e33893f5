"""The engine: the warm state one daemon process holds, shared by every run.

Plain state, no behaviour of its own: the configuration, the database (one writer thread), the
shared GitLab client (one concurrency limit for every run), this daemon's lock-owner id, the
batch sizes (``tuning.Tuning``) and the embedding service (the provider, loaded on first use, and
the vector index; ``embedding/``). Services hand it to the sync entry points
(``sync.surgical.run_preflight`` / ``run_surgical_sync``, ``sync.standard.run_standard_sync``);
nothing here imports ``sync`` (docs/architecture.md, "Layers"). Runs are cancelled by cancelling
the asyncio task that awaits them: the sync code records the run as ``cancelled``, releases its
locks and re-raises ``CancelledError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lore_daemon import protocol
from lore_daemon.config import Config
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.gitlab._retry import RetryPolicy
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.store.connection import Database
from lore_daemon.timeutil import now_ms
from lore_daemon.tuning import Tuning

ProgressSink = Callable[[protocol.ProgressNotification], None]


def discard_progress(_: protocol.ProgressNotification) -> None:
    """A progress sink that drops every notification (the default of the sync entry points)."""
    return None


@dataclass
class Engine:
    config: Config
    db: Database
    gitlab: GitLabClient
    owner: str
    tuning: Tuning = field(default_factory=Tuning)
    started_at_ms: int = field(default_factory=now_ms)
    # The daemon passes its process-wide service (lore/status reads its health without an engine).
    embeddings: EmbeddingService | None = None

    def __post_init__(self) -> None:
        if self.embeddings is None:
            self.embeddings = EmbeddingService(self.config.embedding)

    @classmethod
    def create(
        cls, config: Config, db: Database, token: str, *, owner: str, tuning: Tuning | None = None,
        retry: RetryPolicy | None = None, embeddings: EmbeddingService | None = None,
    ) -> Engine:
        """An engine on an open database, with its GitLab client built from the configuration
        (one concurrency limit) and ``tuning`` (page size). ``retry`` tightens the retry policy
        for tests; the daemon uses the default. ``embeddings``: the daemon's process-wide service
        (else one is built from ``config.embedding``)."""
        tuning = tuning or Tuning()
        gitlab = GitLabClient(
            config.gitlab.base_url, token, concurrency=config.sync.primary_concurrency,
            retry=retry, per_page=tuning.per_page,
        )
        return cls(config=config, db=db, gitlab=gitlab, owner=owner, tuning=tuning, embeddings=embeddings)

    async def aclose(self) -> None:
        await self.gitlab.aclose()
        if self.embeddings is not None:
            self.embeddings.close()
        self.db.close()
