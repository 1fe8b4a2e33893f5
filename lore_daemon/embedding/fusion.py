"""Reciprocal Rank Fusion (Cormack et al. 2009): ranked lists merged by ``sum w / (k + rank)``.

Pure and generic: ids of any hashable type, any number of lists, ranks starting at 1. ``k = 60``
is the usual constant (Elasticsearch's ``rank_constant``); ``weights`` scale each list's
contribution (equal by default). Each fused hit keeps its rank in every list (None where absent),
which is what ``lore/search`` reports as ``ranks``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

DEFAULT_K = 60


@dataclass(frozen=True, slots=True)
class Fused(Generic[T]):
    id: T
    score: float
    ranks: tuple[int | None, ...]  # 1-based rank in each input list, None where absent


def reciprocal_rank_fusion(
    lists: Sequence[Sequence[T]], *, k: float = DEFAULT_K, weights: Sequence[float] | None = None
) -> list[Fused[T]]:
    """Fuse ranked lists, best first. Within a list only an id's first occurrence counts.

    Ties (equal scores) go to the id with the best single rank, then to the earlier list.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    if weights is None:
        weights = [1.0] * len(lists)
    if len(weights) != len(lists) or any(w < 0 for w in weights):
        raise ValueError("one non-negative weight per list")
    ranks: dict[T, list[int | None]] = {}
    for index, ranked in enumerate(lists):
        rank = 0
        for item in ranked:
            slot = ranks.setdefault(item, [None] * len(lists))
            if slot[index] is None:
                rank += 1
                slot[index] = rank
    fused = [
        Fused(item, sum(weights[i] / (k + r) for i, r in enumerate(found) if r is not None), tuple(found))
        for item, found in ranks.items()
    ]

    def order(hit: Fused[T]) -> tuple[float, int, int]:
        present = [(r, i) for i, r in enumerate(hit.ranks) if r is not None]
        best_rank, first_list = min(present)
        return (-hit.score, best_rank, first_list)

    fused.sort(key=order)
    return fused
