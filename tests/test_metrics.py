"""semspace.metrics: known values, tie handling, and agreement with scipy."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from semspace.errors import InvalidInputError, InvalidParameterError
from semspace.metrics import (
    exact_top_k,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    recall_vs_exact,
    retrieval_scores,
    rowwise_spearman,
    spearman,
)


def test_retrieval_metrics_known_values():
    relevant = {"a": 1, "b": 1}
    assert ndcg_at_k(["a", "b", "c"], relevant) == pytest.approx(1.0)
    assert ndcg_at_k(["c", "a"], {"a": 1}) == pytest.approx(1 / np.log2(3))
    graded = ndcg_at_k(["b", "a"], {"a": 3, "b": 1})
    assert graded == pytest.approx((1 + 3 / np.log2(3)) / (3 + 1 / np.log2(3)))
    assert recall_at_k(["x", "a"], relevant, 10) == 0.5 and recall_at_k(["x", "a"], relevant, 1) == 0.0
    assert mrr_at_k(["x", "y", "b"], relevant) == pytest.approx(1 / 3) and mrr_at_k(["x"], relevant) == 0.0
    scores = retrieval_scores({"q1": ["a", "b"]}, {"q1": relevant, "q2": {"c": 1}})  # q2 has no ranking: all 0
    assert scores["nDCG@10"] == pytest.approx(50.0) and scores["recall@100"] == pytest.approx(50.0)


def test_recall_vs_exact():
    assert recall_vs_exact(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]), 3) == pytest.approx(2 / 3)
    assert recall_vs_exact([1, 2, 3], [3, 2, 9], 3) == pytest.approx(2 / 3)  # 1-D: one query
    assert recall_vs_exact([[1, 2], [5, 6]], [[1, 2], [6, 7]], 2) == pytest.approx(0.75)  # mean over queries
    assert recall_vs_exact([4, -1, -1], [4, -1, -1], 3) == pytest.approx(1 / 3)  # FAISS padding is a miss
    assert recall_vs_exact([4], [4, 5], 2) == pytest.approx(0.5)  # fewer than k found: denominator stays k
    with pytest.raises(InvalidInputError, match="one row per query"):
        recall_vs_exact([[1, 2]], [1, 2], 2)
    with pytest.raises(InvalidParameterError, match="'k'"):
        recall_vs_exact([1], [1], 0)


def test_exact_top_k_breaks_ties_to_the_lower_index():
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.9])
    np.testing.assert_array_equal(exact_top_k(scores, 2), [1, 2])
    np.testing.assert_array_equal(exact_top_k(np.vstack([scores, -scores]), 1), [[1], [3]])
    # Item 4 ties the 2nd score but the exact ranking left it out: a strict miss, as documented.
    assert recall_vs_exact([1, 4], exact_top_k(scores, 2), 2) == 0.5


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_spearman_matches_scipy_and_handles_constants():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y[:10] = y[0]  # ties
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert spearman(np.ones(5), np.arange(5)) == 0.0
    with pytest.raises(InvalidInputError, match="at least 2"):
        spearman([1.0], [2.0])
    X, Y = rng.normal(size=(4, 30)), rng.normal(size=(4, 30))
    np.testing.assert_allclose(rowwise_spearman(X, Y), [spearman(a, b) for a, b in zip(X, Y, strict=True)])
