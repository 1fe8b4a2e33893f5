"""Standard sync, phases ``docs`` and ``embed``.

``docs`` drains the global dirty queue in batches (one transaction each) until a batch finds
nothing to do. ``store.documents`` writes a document only when its content hash changes, so an
unchanged source costs a render and no write. A source that keeps failing to render is parked by
the store after a few attempts (its error is kept on the dirty row) and reported as a warning here.

``embed`` runs after the ``sync`` lock is released, under its own ``embed`` lock. With the
embedding provider ``none`` (the only one this version ships) it is skipped and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from lore_daemon.store.documents import drain_dirty
from lore_daemon.sync.context import RunCancelled, RunContext
from lore_daemon.sync.locking import HeldLock
from lore_daemon.sync.write_clock import WriteClock
from lore_daemon.timeutil import now_ms

DOCS_BATCH = 500
EMBED_SKIPPED_NONE = "embedding provider is 'none'; embed phase skipped"
EMBED_SKIPPED_NO_EMBED = "embed phase skipped: the request asked for noEmbed"


@dataclass(frozen=True, slots=True)
class DocsBatch:
    regenerated: int
    unchanged: int
    deleted: int
    failed: int
    processed: int


def _drain_batch(conn: apsw.Connection, ctx: RunContext, batch: int) -> DocsBatch:
    with conn:
        ctx.check_cancelled()
        outcome = drain_dirty(conn, now_ms=now_ms(), batch=batch)
    return DocsBatch(
        regenerated=len(outcome.regenerated_ids),
        unchanged=len(outcome.unchanged_ids),
        deleted=outcome.deleted,
        failed=len(outcome.failed),
        processed=outcome.processed,
    )


async def run_docs_phase(ctx: RunContext, held: HeldLock, clock: WriteClock) -> None:
    """Regenerate documents for every dirty source (not only this run's), batch by batch."""
    failed_sources = 0
    while True:
        if ctx.cancel_event.is_set():
            raise RunCancelled("The run was cancelled.", "CANCELLED", "Retry the run when ready.")
        held.ensure_held()
        batch = await clock.write(ctx, "docs", _drain_batch, ctx, DOCS_BATCH)
        if batch.processed == 0:
            break
        ctx.counters.documents_regenerated += batch.regenerated
        ctx.counters.documents_unchanged += batch.unchanged
        failed_sources += batch.failed
        ctx.report_throttled(f"{ctx.counters.documents_regenerated} documents regenerated")
    if failed_sources:
        ctx.warnings.append(
            f"{failed_sources} document regeneration attempt(s) failed; the sources stay dirty "
            "with their error recorded (see lore/status)"
        )


async def run_embed_phase(ctx: RunContext, *, no_embed: bool) -> None:
    """Embed the regenerated documents. No provider ships yet: record why it was skipped."""
    if no_embed:
        ctx.emit("report", EMBED_SKIPPED_NO_EMBED)
        return
    if ctx.engine.config.embedding.provider == "none":
        ctx.warnings.append(EMBED_SKIPPED_NONE)
        ctx.emit("report", EMBED_SKIPPED_NONE)
        return
