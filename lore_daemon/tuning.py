"""Tuning: the batch sizes the pipelines use, in one frozen object the engine carries.

They are not configuration (no user should need them, and the figures in docs/benchmarks.md were
measured with these defaults); they are parameters so tests and benchmarks can pass small values
(``Engine(..., tuning=Tuning(jobs_per_transaction=4))``) instead of patching module globals. The
store functions take the one value they need as an argument whose default comes from here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Tuning:
    # GitLab listing page size (``per_page``); 100 is GitLab's maximum.
    per_page: int = 100
    # Standard ingest: listed items sharing one commit, each in its own savepoint (sync/batched.py).
    items_per_transaction: int = 100
    # Dependents: jobs sharing one commit. Bounded so the write lock is held briefly: other
    # processes' writers wait on it, and this process's lock heartbeat runs between hops.
    jobs_per_transaction: int = 128
    # Dependents: a writer hop waits (at most ``hop_gather_s``) until this many parents have
    # arrived, unless nothing else is in flight: hops of 1-3 parents cost a commit each.
    hop_parents: int = 50
    hop_gather_s: float = 0.05
    # Docs phase: dirty sources rendered and written per transaction.
    docs_batch: int = 500
    # Documents per multi-row INSERT/UPDATE (store/documents.py): a whole docs batch is one
    # statement, one FTS5 segment (measured ~9% less write time than 100 on the 2k replay).
    write_chunk: int = 500
    # Embed phase: documents per step (one read, one write transaction, one progress report), in
    # multiples of ``embedding.batch_size``, so chunks fill whole batches across documents.
    embed_step_batches: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"Tuning.{f.name} must be positive")
        if self.per_page > 100:
            raise ValueError("Tuning.per_page must be at most 100 (GitLab's maximum)")


DEFAULT_TUNING = Tuning()
