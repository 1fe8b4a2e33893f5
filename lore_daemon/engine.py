"""The engine: the warm state one daemon process holds, shared by every run.

Plain state, no behaviour of its own: the configuration, the database (one writer thread), the
shared GitLab client (one concurrency limit for every run), this daemon's lock-owner id and the
tuning settings (``settings.Tuning``). Services hand it to the sync entry points
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
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.store.connection import Database
from lore_daemon.timeutil import now_ms

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
    started_at_ms: int = field(default_factory=now_ms)

    async def aclose(self) -> None:
        await self.gitlab.aclose()
        self.db.close()
