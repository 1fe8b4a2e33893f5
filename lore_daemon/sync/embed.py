"""The embed phase of a run: vectors for the run's documents, under the ``embed`` lock
(docs/search.md, "The embed phase"; docs/surgical-sync.md, invariant 9).

It runs after the ``sync`` lock was released, under its own ``embed`` lock, so a long embedding
never blocks another run's writes, and two embedders never write ``embeddings`` at once (invariant 5).

Scope: a surgical run passes exactly the documents it regenerated; a standard run passes None and
the phase backfills every document without a current vector (``store.vectors``), or every
document when the run forces a re-embed (``reembed``: no vector is reused). It works in steps of
``tuning.embed_step_batches * embedding.batch_size`` documents (``embed_step``), reporting
``done / total`` and the rate; cancelling the run stops it at once (a batch already in the model
finishes unwritten).

Failures: a document the provider refuses is recorded (``embedding_failures``, and an
``EntityFailure`` with stage ``embed`` for its entity); a provider that cannot load or answer stops
the phase, its error is kept, and the documents of the failed step are recorded against their
entities. Either way the run ends ``partial``; documents keep their old vectors, and search falls
back to lexical where there are none.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import apsw

from lore_daemon import protocol
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.errors import EmbeddingError, LoreError
from lore_daemon.store import vectors
from lore_daemon.store.locks import LockInfo
from lore_daemon.sync.context import RunContext
from lore_daemon.sync.embed_step import embed_step
from lore_daemon.sync.locking import acquire_lock

EmbedStatus = Literal["embedded", "skipped", "partial", "failed"]


@dataclass
class EmbedOutcome:
    status: EmbedStatus
    document_ids: list[int]  # a surgical run's scope: exactly the documents it regenerated
    embedded: int = 0
    total: int = 0
    warning: str | None = None
    error: LoreError | None = None  # the provider failure that stopped the phase
    failed: dict[int, LoreError] = field(default_factory=dict)  # per document


def skipped_warning(count: int) -> str:
    return f'Embedding skipped: embedding.provider is "none" ({count} document(s) not embedded).'


def _scope_step(
    conn: apsw.Connection, key: vectors.VectorKey, after_id: int, limit: int, reembed: bool
) -> list[int]:
    if reembed:
        return vectors.all_document_ids(conn, after_id=after_id, limit=limit)
    return vectors.pending_document_ids(conn, key, after_id=after_id, limit=limit)


def _total(conn: apsw.Connection, key: vectors.VectorKey, reembed: bool) -> int:
    return vectors.count_documents(conn) if reembed else vectors.count_pending(conn, key)


def _clear_failures(conn: apsw.Connection) -> int:
    with conn:
        cleared = vectors.clear_failures(conn)
    return cleared


async def run_embed_phase(
    ctx: RunContext,
    document_ids: Sequence[int] | None,
    *,
    service: EmbeddingService | None,
    no_embed: bool,
    reembed: bool = False,
) -> EmbedOutcome:
    """Embed ``document_ids`` (None: backfill) under the ``embed`` lock. Failures are returned
    and recorded in ``ctx`` (failures, warnings), never raised: the documents are committed."""
    ids = list(dict.fromkeys(document_ids or []))
    if no_embed:
        return EmbedOutcome("skipped", ids, warning="Embedding skipped: noEmbed was requested.")
    if service is None or not service.enabled:
        return EmbedOutcome("skipped", ids, warning=skipped_warning(len(ids)))
    if document_ids is not None and not ids:
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
        return await _embed(ctx, service, ids, backfill=document_ids is None, reembed=reembed)
    finally:
        await held.release()


async def _embed(
    ctx: RunContext, service: EmbeddingService, ids: list[int], *, backfill: bool, reembed: bool
) -> EmbedOutcome:
    db = ctx.engine.db
    key = service.key
    assert key is not None
    if reembed:
        await ctx.write(_clear_failures)
    total = await db.read(functools.partial(_total, key=key, reembed=reembed)) if backfill else len(ids)
    outcome = EmbedOutcome("embedded", ids, total=total)
    ctx.counters.embed_total += total
    size = (service.embedding.batch_size or 8) * ctx.tuning.embed_step_batches
    started = time.monotonic()
    after_id, offset = 0, 0
    while True:
        ctx.check_cancelled()
        if backfill:
            step = await db.read(
                functools.partial(_scope_step, key=key, after_id=after_id, limit=size, reembed=reembed)
            )
        else:
            step, offset = ids[offset : offset + size], offset + size
        if not step:
            break
        after_id = step[-1]
        try:
            result = await embed_step(ctx, db, service, step, reuse=not reembed)
        except EmbeddingError as exc:
            outcome.error = exc
            outcome.failed.update({doc_id: exc for doc_id in (step if backfill else ids[offset - size :])})
            break
        outcome.embedded += len(result.written)
        outcome.failed.update(result.refused)
        ctx.counters.embedded += len(result.written)
        rate = outcome.embedded / max(time.monotonic() - started, 1e-3)
        ctx.report_throttled(f"embedded {outcome.embedded}/{total} documents ({rate:.1f}/s)")
    ctx.emit("report", f"embedded {outcome.embedded}/{total} documents")
    if outcome.failed:
        await _record(ctx, outcome, total)
    return outcome


async def _record(ctx: RunContext, outcome: EmbedOutcome, total: int) -> None:
    """One EntityFailure (stage ``embed``) per entity with a failed document; a warning saying why."""
    failed_ids = list(outcome.failed)
    entities = await ctx.engine.db.read(functools.partial(vectors.document_entities, ids=failed_ids))
    seen: set[tuple[str, int]] = {(f.kind, f.iid) for f in ctx.failures if f.stage == "embed"}
    for doc_id, exc in outcome.failed.items():
        entity = entities.get(doc_id)
        if entity is None or entity in seen:
            continue
        seen.add(entity)
        kind, iid = entity
        ctx.failures.append(
            protocol.EntityFailure(
                kind="issue" if kind == "issue" else "mr", iid=iid, stage="embed", code=exc.code,
                message=exc.message, retryable=exc.retryable,
            )
        )
    outcome.status = "failed" if outcome.embedded == 0 else "partial"
    left = total - outcome.embedded
    if outcome.error is not None:
        ctx.warnings.append(
            f"embedding stopped ({outcome.error.code}): {outcome.error.message} {left} document(s) "
            "keep their old vectors or have none; search falls back to lexical for them"
        )
    else:
        ctx.warnings.append(f"the embedding provider refused {len(outcome.failed)} document(s)")
