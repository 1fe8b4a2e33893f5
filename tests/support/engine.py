"""Engines built the way the daemon builds them (``Engine.create`` on a config file, a real
database, a GitLab client against the simulator), plus a progress recorder."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from lore_daemon import protocol
from lore_daemon.config import load_config, read_token
from lore_daemon.embedding.provider import Provider
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.engine import Engine
from lore_daemon.gitlab import RetryPolicy
from lore_daemon.store.connection import Database
from lore_daemon.sync.locking import make_owner
from lore_daemon.tuning import Tuning

# 5xx storms give up in milliseconds instead of seconds.
FAST_RETRY = RetryPolicy(max_attempts=3, max_elapsed_s=5.0, base_delay_s=0.005, max_delay_s=0.02, jitter=0.0)


def build_engine(
    config_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = FAST_RETRY,
    tuning: Tuning | None = None,
    provider: Provider | None = None,
) -> Engine:
    """An Engine from ``config_path`` (token from ``env``, default ``os.environ``), its database
    open. ``retry=None`` keeps the daemon's own retry policy; ``provider`` hands the embedding
    service an already loaded model (the session's ``local_model``)."""
    env = os.environ if env is None else env
    config = load_config(config_path, env=env)
    db = Database(config.db_path)
    db.open()
    token = read_token(config, env).reveal()
    embeddings = EmbeddingService(config.embedding, env, provider=provider)
    return Engine.create(
        config, db, token, owner=make_owner(), retry=retry, tuning=tuning, embeddings=embeddings
    )


class Progress:
    """A progress sink that records every notification and runs hooks on each (to act, e.g.
    cancel, at a chosen point)."""

    def __init__(self) -> None:
        self.notes: list[protocol.ProgressNotification] = []
        self.hooks: list[Callable[[protocol.ProgressNotification], None]] = []

    def __call__(self, note: protocol.ProgressNotification) -> None:
        self.notes.append(note)
        for hook in list(self.hooks):
            hook(note)

    def phases(self, event: str) -> list[str]:
        return [n.phase for n in self.notes if n.event == event]
