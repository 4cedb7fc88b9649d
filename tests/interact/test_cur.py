"""CUR numerics on synthetic score matrices (no model)."""

import json

import numpy as np
import pytest

from semspace.errors import ArtifactError, InvalidInputError, InvalidParameterError, NotFittedError
from semspace.interact.cur import DEFAULT_RCOND, CURIndex, regularized_pinv, retrieve_and_rerank
from semspace.metrics import exact_top_k, recall_vs_exact


def low_rank(n_queries: int, n_items: int, rank: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_queries, rank)) @ rng.normal(size=(rank, n_items))


class CountingScorer:
    def __init__(self, row: np.ndarray) -> None:
        self.row, self.calls = row, 0

    def __call__(self, items: np.ndarray) -> np.ndarray:
        self.calls += len(items)
        return self.row[items]


def test_exact_recovery_on_rank_r_matrix():
    M = low_rank(60, 400, rank=8)
    anchors, test = M[:20], M[20:]
    index = CURIndex(n_anchor_items=12, seed=1).fit_matrix(anchors)
    for row in test:
        approx = index.approximate(row[index.anchor_item_ids_])
        assert np.abs(approx - row).max() / np.abs(row).max() < 1e-8
        result = index.search(CountingScorer(row), k=10, budget=30)
        assert recall_vs_exact(result.ids, exact_top_k(row, 10), 10) == 1.0


def test_anchor_scores_reproduced_when_kq_at_least_ki():
    rng = np.random.default_rng(0)
    R = rng.normal(size=(30, 200))  # full rank, noisy
    index = CURIndex(n_anchor_items=20, seed=0).fit_matrix(R)
    for row in R[:5]:
        approx = index.approximate(row[index.anchor_item_ids_])
        np.testing.assert_allclose(approx[index.anchor_item_ids_], row[index.anchor_item_ids_], atol=1e-8)


@pytest.mark.parametrize("rounds", [1, 2, 5])
@pytest.mark.parametrize("budget", [20, 37, 100])
def test_exact_call_accounting(rounds, budget):
    M = low_rank(40, 300, rank=5, seed=2)
    index = CURIndex(n_anchor_items=15, seed=0).fit_matrix(M[:30])
    scorer = CountingScorer(M[35])
    result = index.search(scorer, k=10, budget=budget, rounds=rounds)
    assert scorer.calls == result.calls == len(result.scored) == budget
    assert len(set(result.scored.tolist())) == budget  # nothing scored twice
    assert index.offline_calls_ == 30 * 300
    rnr = CountingScorer(M[35])
    out = retrieve_and_rerank(np.random.default_rng(0).normal(size=300), rnr, k=10, budget=budget)
    assert rnr.calls == out.calls == budget


def test_final_topk_uses_every_exactly_scored_item():
    M = low_rank(40, 300, rank=5, seed=3)
    index = CURIndex(n_anchor_items=15, seed=0).fit_matrix(M[:30])
    row = M[36]
    result = index.search(CountingScorer(row), k=5, budget=60, rounds=3)
    best_scored = result.scored[np.argsort(-row[result.scored])[:5]]
    assert set(result.ids.tolist()) == set(best_scored.tolist())
    np.testing.assert_allclose(result.exact_scores, row[result.ids])


def test_regularisation_removes_error_spike_at_kq_equal_ki():
    rng = np.random.default_rng(0)
    signal = low_rank(200, 500, rank=10, seed=4)
    M = signal + 0.3 * rng.normal(size=signal.shape)  # noisy, full rank
    held_out = M[100:]

    def error(k_q: int, rcond: float, ridge: float) -> float:
        index = CURIndex(n_anchor_items=40, rcond=rcond, ridge=ridge, seed=0).fit_matrix(M[:k_q])
        approx = index.approximate(held_out[:, index.anchor_item_ids_])
        return float(np.linalg.norm(approx - held_out) / np.linalg.norm(held_out))

    plain_spike, plain_more = error(40, 1e-12, 0.0), error(100, 1e-12, 0.0)
    assert plain_spike > 1.5 * plain_more  # the known spike at k_q = k_i
    assert error(40, 1e-12, ridge=50.0) < 0.6 * plain_spike
    assert error(40, 0.1, 0.0) < 0.6 * plain_spike


def test_regularized_pinv_matches_numpy_without_regularisation():
    A = np.random.default_rng(0).normal(size=(7, 4))
    np.testing.assert_allclose(regularized_pinv(A, rcond=1e-12), np.linalg.pinv(A), atol=1e-10)


def test_kmeans_anchors_distinct():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(100, 8))
    index = CURIndex(n_anchor_items=10, anchor_items="kmeans").fit_matrix(rng.normal(size=(20, 100)), vectors)
    assert len(set(index.anchor_item_ids_.tolist())) == 10


def test_bad_input():
    M = low_rank(20, 50, 3)
    with pytest.raises(NotFittedError):
        CURIndex().approximate(np.zeros(3))
    index = CURIndex(n_anchor_items=10).fit_matrix(M)
    with pytest.raises(InvalidParameterError, match="budget"):
        index.search(CountingScorer(M[0]), k=5, budget=9)
    with pytest.raises(InvalidParameterError, match="'k'"):
        index.search(CountingScorer(M[0]), k=51, budget=20)
    with pytest.raises(InvalidInputError):
        CURIndex().fit_matrix(np.zeros((0, 10)))
    with pytest.raises(InvalidParameterError, match="n_anchor_items"):
        CURIndex(n_anchor_items=60).fit_matrix(M)
    with pytest.raises(InvalidInputError, match="kmeans"):
        CURIndex(n_anchor_items=5, anchor_items="kmeans").fit_matrix(M)


def test_save_load(tmp_path):
    M = low_rank(20, 50, 3)
    index = CURIndex(n_anchor_items=8, ridge=0.1).fit_matrix(M)
    loaded = CURIndex.load(index.save(tmp_path / "cur"))
    np.testing.assert_array_equal(loaded.item_embeddings_, index.item_embeddings_)
    assert loaded.ridge == 0.1


def test_bm25_first_stage_ranks_word_overlap_first():
    from semspace.interact import BM25FirstStage

    stage = BM25FirstStage(["a man plays the guitar", "a dog runs", "cats eat food"])
    scores = stage("guitar player man")
    assert scores.shape == (3,) and int(np.argmax(scores)) == 0
    assert (stage("the a") == 0).all()  # only stopwords: no signal


def test_fit_scores_every_anchor_query_against_every_item():
    class Scorer:
        calls = 0

        def predict(self, pairs):
            Scorer.calls += len(pairs)
            return [len(q) * len(item) for q, item in pairs]  # rank-1 score matrix

    items = ["a", "bb", "ccc", "dddd", "eeeee"]
    index = CURIndex(n_anchor_items=2, seed=0).fit(["x", "yy", "zzz"], items, Scorer())
    assert Scorer.calls == index.offline_calls_ == 15
    row = np.array([4.0 * len(i) for i in items])  # a new query of length 4
    np.testing.assert_allclose(index.approximate(row[index.anchor_item_ids_]), row, rtol=1e-8)


def test_save_load_checks_the_header(tmp_path):
    folder = CURIndex(n_anchor_items=8).fit_matrix(low_rank(20, 50, 3)).save(tmp_path / "cur")
    config = json.loads((folder / "cur.json").read_text())
    assert config["format"] == "semspace.cur" and config["params"]["rcond"] == DEFAULT_RCOND == 1e-3
    (folder / "cur.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format version 99"):
        CURIndex.load(folder)
    (folder / "cur.json").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        CURIndex.load(folder)


def test_one_rcond_default():
    import inspect

    from semspace.interact.searcher import CURSearcher

    assert CURIndex().rcond == DEFAULT_RCOND
    assert inspect.signature(CURSearcher.build).parameters["rcond"].default == DEFAULT_RCOND
    assert inspect.signature(regularized_pinv).parameters["rcond"].default == DEFAULT_RCOND


def test_searcher_items_header_checked_on_load(tmp_path):
    from semspace.interact.searcher import ITEMS, CURSearcher

    class FakeCrossEncoder:
        model_id = "fake-ce"

    index = CURIndex(n_anchor_items=8).fit_matrix(low_rank(20, 50, 3))
    ids, texts = [f"d{i}" for i in range(50)], [f"text {i}" for i in range(50)]
    folder = CURSearcher(index, ids, texts, FakeCrossEncoder()).save(tmp_path / "cur")
    items = json.loads((folder / ITEMS).read_text())
    assert items["format"] == "semspace.cur_items" and items["format_version"] == 1 and "semspace_version" in items
    loaded = CURSearcher.load(folder, cross_encoder=FakeCrossEncoder())
    assert loaded.item_ids == ids and loaded.item_texts == texts
    (folder / ITEMS).write_text(json.dumps({"ids": ids, "texts": texts, "cross_encoder": "fake-ce"}))  # no header
    with pytest.raises(ArtifactError, match=r"not a semspace\.cur_items artifact"):
        CURSearcher.load(folder, cross_encoder=FakeCrossEncoder())
    (folder / ITEMS).write_text(json.dumps({**items, "texts": texts[:3]}))
    with pytest.raises(ArtifactError, match="one length"):
        CURSearcher.load(folder, cross_encoder=FakeCrossEncoder())


def test_fit_progress_counts_cross_encoder_calls_and_silences_the_scorers_bar(capsys):
    """The bar advances with the CE calls (k_q·|I| pairs), not over the list of queries before any call."""
    seen = []

    class Scorer:
        def predict(self, pairs, show_progress_bar=None):
            seen.append(show_progress_bar)
            return [float(len(q) * len(item)) for q, item in pairs]

    CURIndex(n_anchor_items=2, seed=0).fit(
        ["x", "yy", "zzz"], ["a", "bb", "ccc", "dddd"], Scorer(), show_progress_bar=True
    )
    err = capsys.readouterr().err
    assert "Cross-encoding anchor queries" in err and "12/12" in err and "pair" in err
    assert seen == [False, False, False]
