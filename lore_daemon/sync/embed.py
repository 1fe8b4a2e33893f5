"""The embed phase of a run: embed exactly the documents the run regenerated
(docs/surgical-sync.md, invariant 9).

It runs after the ``sync`` lock was released, under its own ``embed`` lock, so a long embedding
never blocks another run's writes, and two embedders never write ``embeddings`` at once (invariant 5).

No embedding model ships yet: with ``embedding.provider = "none"`` the phase is recorded as
skipped with a warning, and the ids it would have embedded are still returned so the run ledger
shows the scope (``surgicalSummary.embedDocumentIds``). A provider plugs in as an
:class:`Embedder`; the lock handling and scoping below are the same for every provider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import apsw

from lore_daemon.config import Config
from lore_daemon.errors import LoreError
from lore_daemon.store.locks import LockInfo
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.locking import acquire_lock

EmbedStatus = Literal["embedded", "skipped", "failed"]


class Embedder(Protocol):
    """Writes embeddings for documents. ``embed`` runs on the writer thread, in the caller's
    transaction, and returns how many documents it embedded."""

    name: str

    def embed(
        self, conn: apsw.Connection, document_ids: Sequence[int], *, check_cancelled: Callable[[], None]
    ) -> int: ...


def embedder_for(config: Config) -> Embedder | None:
    """The configured provider; None for ``none`` (the only provider of this version)."""
    if config.embedding.provider == "none":
        return None
    raise LoreError(f"unknown embedding provider {config.embedding.provider!r}", "INTERNAL")


@dataclass
class EmbedOutcome:
    status: EmbedStatus
    document_ids: list[int]  # the run's scope: exactly the documents it regenerated
    embedded: int = 0
    warning: str | None = None
    error: LoreError | None = None
    details: dict[str, int] = field(default_factory=dict)


def _embed_in_transaction(
    conn: apsw.Connection, embedder: Embedder, ids: list[int], check_cancelled: Callable[[], None]
) -> int:
    with conn:
        embedded = embedder.embed(conn, ids, check_cancelled=check_cancelled)
    return embedded


async def run_embed_phase(
    ctx: RunContext,
    document_ids: Sequence[int],
    *,
    embedder: Embedder | None,
    no_embed: bool,
) -> EmbedOutcome:
    """Embed ``document_ids`` (and nothing else) under the ``embed`` lock.

    Skipped without taking the lock when the caller asked ``noEmbed``, when there is no provider,
    or when the run regenerated nothing. A provider failure is returned, not raised: embedding is
    best effort, the content and documents are already committed.
    """
    ids = list(dict.fromkeys(document_ids))
    if no_embed:
        return EmbedOutcome("skipped", ids, warning="Embedding skipped: noEmbed was requested.")
    if embedder is None:
        return EmbedOutcome(
            "skipped", ids,
            warning=f'Embedding skipped: embedding.provider is "none" ({len(ids)} document(s) not embedded).',
        )
    if not ids:
        return EmbedOutcome("skipped", ids)
    engine = ctx.engine

    def on_wait(holder: LockInfo, waited_ms: int) -> None:
        ctx.emit("report", f"waiting for the embed lock held by pid {holder.pid} ({waited_ms} ms)")

    held = await acquire_lock(
        engine.db, "embed", owner=engine.owner, run_id=ctx.run_id,
        timeout_ms=engine.config.sync.lock_timeout_ms, stale_ms=engine.config.sync.stale_lock_ms,
        on_wait=on_wait,
    )
    ctx.stage_timings_ms["embedLockWait"] = held.waited_ms
    try:
        embedded = await ctx.write(_embed_in_transaction, embedder, ids, ctx.check_cancelled)
    except LoreError as exc:
        return EmbedOutcome("failed", ids, error=exc)
    finally:
        await held.release()
    ctx.counters.embedded += embedded
    return EmbedOutcome("embedded", ids, embedded=embedded)
