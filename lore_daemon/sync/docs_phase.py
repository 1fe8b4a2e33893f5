"""Standard sync, phases ``docs`` and ``embed``.

``docs`` drains the global dirty queue in batches (one transaction each) until a batch finds
nothing to do. ``store.documents`` writes a document only when its content hash changes, so an
unchanged source costs a render and no write. A source that keeps failing to render is parked by
the store after a few attempts (its error is kept on the dirty row) and reported as a warning here.

``embed`` runs after the ``sync`` lock is released and goes through the shared embed phase
(``sync/embed.py``: its own ``embed`` lock): a standard run backfills every document without a
current vector, or re-embeds every document when asked. With the provider ``none`` it is skipped
with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.store.documents import drain_dirty
from lore_daemon.sync.context import RunCancelled, RunContext
from lore_daemon.sync.embed import run_embed_phase
from lore_daemon.sync.locking import HeldLock
from lore_daemon.sync.write_clock import WriteClock
from lore_daemon.timeutil import now_ms

EMBED_SKIPPED_NONE = "embedding provider is 'none'; embed phase skipped"
EMBED_SKIPPED_NO_EMBED = "embed phase skipped: the request asked for noEmbed"


@dataclass(frozen=True, slots=True)
class DocsBatch:
    regenerated: int
    regenerated_ids: list[int]  # only collected when an embedder will use them
    unchanged: int
    deleted: int
    failed: int
    processed: int


def _drain_batch(conn: apsw.Connection, ctx: RunContext, keep_ids: bool) -> DocsBatch:
    tuning = ctx.tuning
    with conn:
        ctx.check_cancelled()
        outcome = drain_dirty(
            conn, now_ms=now_ms(), batch=tuning.docs_batch, write_chunk=tuning.write_chunk
        )
    return DocsBatch(
        regenerated=len(outcome.regenerated_ids),
        regenerated_ids=outcome.regenerated_ids if keep_ids else [],
        unchanged=len(outcome.unchanged_ids),
        deleted=outcome.deleted,
        failed=len(outcome.failed),
        processed=outcome.processed,
    )


async def run_docs_phase(
    ctx: RunContext, held: HeldLock, clock: WriteClock, *, keep_ids: bool
) -> list[int]:
    """Regenerate documents for every dirty source (not only this run's), batch by batch.

    Returns the regenerated document ids when ``keep_ids`` (an embedder will embed them), else [].
    """
    regenerated_ids: list[int] = []
    failed_sources = 0
    while True:
        if ctx.cancel_event.is_set():
            raise RunCancelled("The run was cancelled.", "CANCELLED", "Retry the run when ready.")
        held.ensure_held()
        batch = await clock.write(ctx, "docs", _drain_batch, ctx, keep_ids)
        if batch.processed == 0:
            break
        regenerated_ids.extend(batch.regenerated_ids)
        ctx.counters.documents_regenerated += batch.regenerated
        ctx.counters.documents_unchanged += batch.unchanged
        failed_sources += batch.failed
        ctx.report_throttled(f"{ctx.counters.documents_regenerated} documents regenerated")
    if failed_sources:
        ctx.warnings.append(
            f"{failed_sources} document regeneration attempt(s) failed; the sources stay dirty "
            "with their error recorded (see lore/status)"
        )
    return regenerated_ids


async def run_standard_embed(
    ctx: RunContext, service: EmbeddingService | None, *, no_embed: bool, reembed: bool
) -> None:
    """Backfill (or, with ``reembed``, redo) the vectors of every document, through the shared
    embed phase (``embed`` lock, progress, per-document failures recorded in ``ctx``)."""
    if no_embed:
        ctx.emit("report", EMBED_SKIPPED_NO_EMBED)
        return
    if service is None or not service.enabled:
        ctx.warnings.append(EMBED_SKIPPED_NONE)
        ctx.emit("report", EMBED_SKIPPED_NONE)
        return
    await run_embed_phase(ctx, None, service=service, no_embed=False, reembed=reembed)
