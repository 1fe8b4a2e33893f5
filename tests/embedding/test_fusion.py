"""Reciprocal Rank Fusion: scores, ranks reported per list, weights, ties, input checks."""

from __future__ import annotations

import pytest

from lore_daemon.embedding.fusion import reciprocal_rank_fusion


def test_scores_and_ranks_per_list() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    by_id = {f.id: f for f in fused}
    assert by_id["a"].score == pytest.approx(1 / 61 + 1 / 62)
    assert by_id["c"].score == pytest.approx(1 / 63 + 1 / 61)
    assert by_id["d"].ranks == (None, 3) and by_id["b"].ranks == (2, None)
    assert [f.id for f in fused] == ["a", "c", "b", "d"]


def test_a_document_in_both_lists_beats_one_first_in_a_single_list() -> None:
    fused = reciprocal_rank_fusion([["solo", "both"], ["x", "both"]])
    assert fused[0].id == "both"


def test_weights_and_k_change_the_order() -> None:
    lists = [["lex"], ["sem"]]
    assert reciprocal_rank_fusion(lists, weights=[1.0, 2.0])[0].id == "sem"
    assert reciprocal_rank_fusion(lists, weights=[2.0, 1.0])[0].id == "lex"
    small_k = reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=1)
    assert small_k[0].id == "b" and small_k[0].score == pytest.approx(1 / 3 + 1 / 2)


def test_ties_go_to_the_best_single_rank_then_the_earlier_list() -> None:
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "a"]])
    assert fused[0].score == fused[1].score and [f.id for f in fused] == ["a", "b"]


def test_duplicates_within_a_list_count_once() -> None:
    fused = reciprocal_rank_fusion([["a", "a", "b"]])
    assert [(f.id, f.ranks) for f in fused] == [("a", (1,)), ("b", (2,))]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], k=0)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0])
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[], []]) == []
