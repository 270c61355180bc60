"""Ranking metrics at a cut-off against hand-computed examples."""

import numpy as np
import pytest

from mirsearch.errors import ParameterError
from mirsearch.evaluation.ranking import bootstrap_mean, per_query_scores, ranked_relevance


def test_hand_computed_query():
    # ranks 1..5: relevant at 2 and 4; 3 relevant items exist; k = 5
    rel = np.array([[0, 1, 0, 1, 0]], bool)
    s = per_query_scores(rel, [3], k=5)
    assert s["map@5"][0] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert s["recall@5"][0] == pytest.approx(2 / 3)
    assert s["rr@5"][0] == pytest.approx(1 / 2)
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert s["ndcg@5"][0] == pytest.approx(dcg / idcg)


def test_cut_off_and_edge_cases():
    rel = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]], bool)
    s = per_query_scores(rel, [10, 0, 1], k=2)
    # AP@2 divides by min(R, k) = 2
    assert s["map@2"].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert s["recall@2"].tolist() == pytest.approx([0.2, 0.0, 0.0])
    assert s["ndcg@2"].tolist() == pytest.approx([1.0, 0.0, 0.0])
    s4 = per_query_scores(rel, [10, 0, 1], k=4)
    assert s4["rr@4"].tolist() == pytest.approx([1.0, 0.0, 0.25])
    assert s4["map@4"][2] == pytest.approx(0.25)
    assert s4["ndcg@4"][2] == pytest.approx(1 / np.log2(5))
    with pytest.raises(ParameterError):
        per_query_scores(rel, [1, 0, 1], k=4)  # 2 relevant ranked but R = 1
    with pytest.raises(ParameterError):
        per_query_scores(rel, [10, 0, 1], k=5)


def test_ranked_relevance_leaves_out_query_and_excluded():
    labels = np.array([0, 0, 1, 0, 1])
    D = np.array([[0.0, 3.0, 1.0, 2.0, 4.0], [3.0, 0.0, 2.0, 1.0, 5.0]])
    exclude = np.zeros_like(D, bool)
    exclude[1, 3] = True  # e.g. a clip of the same track
    rel, R = ranked_relevance(D, labels, exclude=exclude, k=4)
    # query 0: order (without itself) 2, 3, 1, 4 -> 0, 1, 1, 0; R = 2
    assert rel[0].tolist() == [False, True, True, False] and R[0] == 2
    # query 1: item 3 left out: order 2, 0, 4, then padding -> 0, 1, 0, 0; R = 1
    assert rel[1].tolist() == [False, True, False, False] and R[1] == 1
    s = per_query_scores(rel, R, k=4)
    assert s["map@4"].tolist() == pytest.approx([(1 / 2 + 2 / 3) / 2, 1 / 2])


def test_bootstrap_mean():
    m = bootstrap_mean(np.r_[np.zeros(50), np.ones(50)], seed=1)
    assert m.mean == 0.5 and m.low < 0.5 < m.high and m.n == 100
    assert 0.35 < m.low and m.high < 0.65
    assert bootstrap_mean([]).n == 0
    with pytest.raises(ParameterError):
        bootstrap_mean([np.nan])
