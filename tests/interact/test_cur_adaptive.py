"""adaCUR with a dual-encoder first round, and AXN, on synthetic score matrices (no model)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semspace.errors import InvalidInputError, InvalidParameterError, NotFittedError
from semspace.interact import AXNIndex, CURIndex, factorize_anchor_scores, retrieve_and_rerank
from semspace.interact.cur import first_round_items, regularized_pinv
from semspace.metrics import exact_top_k, recall_vs_exact


def low_rank(n_queries: int, n_items: int, rank: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_queries, rank)) @ rng.normal(size=(rank, n_items))


class CountingScorer:
    def __init__(self, row: np.ndarray) -> None:
        self.row, self.calls, self.seen = row, 0, []

    def __call__(self, items: np.ndarray) -> np.ndarray:
        self.calls += len(items)
        self.seen += np.asarray(items).tolist()
        return self.row[items]


def noisy(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A full-rank matrix (low rank + noise, no ties) and a weak first stage for its last row."""
    rng = np.random.default_rng(seed)
    M = low_rank(61, 300, rank=6, seed=seed) + 0.3 * rng.normal(size=(61, 300))
    return M, M[60] + 2.0 * rng.normal(size=300)


def old_search(index: CURIndex, row: np.ndarray, k: int, budget: int, rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """CURIndex.search before the first-stage option (the committed loop), as the reference for the default path."""
    n = index.n_items_
    scored = list(index.anchor_item_ids_)
    exact = list(row[index.anchor_item_ids_])
    approx = index.approximate(np.asarray(exact))
    remaining = min(budget, n) - len(scored)
    steps = 1 if rounds == 1 else rounds - 1
    for step in range(steps):
        if remaining <= 0:
            break
        take = remaining if step == steps - 1 else max(1, remaining // (steps - step))
        seen = np.zeros(n, dtype=bool)
        seen[scored] = True
        candidates = np.argsort(-np.where(seen, -np.inf, approx), kind="stable")[:take]
        candidates = candidates[~seen[candidates]]
        scored += candidates.tolist()
        exact += list(row[candidates])
        remaining -= candidates.size
        if rounds > 1:
            R = index.anchor_scores_
            approx = (np.asarray(exact) @ regularized_pinv(R[:, scored], index.rcond, index.ridge)) @ R
    top = np.argsort(-np.asarray(exact), kind="stable")[:k]
    return np.asarray(scored)[top], np.asarray(scored)


@pytest.mark.parametrize("rounds", [1, 3, 5])
def test_default_search_unchanged(rounds):
    M, _ = noisy(1)
    for anchors, vectors in (("random", None), ("kmeans", np.random.default_rng(0).normal(size=(300, 8)))):
        index = CURIndex(n_anchor_items=12, anchor_items=anchors, seed=3).fit_matrix(M[:40], vectors)
        result = index.search(CountingScorer(M[60]), k=10, budget=47, rounds=rounds)
        ids, scored = old_search(index, M[60], 10, 47, rounds)
        np.testing.assert_array_equal(result.ids, ids)
        np.testing.assert_array_equal(result.scored, scored)


@pytest.mark.parametrize("rounds", [1, 2, 5])
@pytest.mark.parametrize("budget", [20, 37, 100, 300, 500])
def test_budget_is_exact(rounds, budget):
    M, stage = noisy(2)
    row = M[60]
    for n_first in (None, 0, 7, 15):
        index = CURIndex(n_anchor_items=15, seed=0).fit_matrix(M[:40])
        scorer = CountingScorer(row)
        result = index.search(scorer, k=10, budget=budget, rounds=rounds, first_stage=stage, n_first_stage=n_first)
        expected = min(budget, 300)
        assert scorer.calls == result.calls == len(result.scored) == expected
        assert len(set(scorer.seen)) == expected  # nothing scored twice
    axn_index = AXNIndex(rounds=rounds).fit(factorize_anchor_scores(M[:40]))
    for first_stage, n_first in ((None, None), (stage, None), (stage, 3)):
        scorer = CountingScorer(row)
        result = axn_index.search(scorer, k=10, budget=budget, first_stage=first_stage, n_first_stage=n_first)
        assert scorer.calls == result.calls == len(set(scorer.seen)) == min(budget, 300)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(5, 60),
    k_i=st.integers(1, 5),
    extra=st.integers(0, 80),
    rounds=st.integers(1, 6),
    n_first=st.integers(0, 5),
    seed=st.integers(0, 1000),
)
def test_budget_is_exact_for_any_split(n, k_i, extra, rounds, n_first, seed):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(8, n)).round(1)  # rounding makes ties, which must not cost extra calls
    stage = rng.normal(size=n).round(1)
    budget = k_i + extra
    index = CURIndex(n_anchor_items=k_i, seed=seed).fit_matrix(M[:6])
    scorer = CountingScorer(M[7])
    index.search(scorer, k=1, budget=budget, rounds=rounds, first_stage=stage, n_first_stage=min(n_first, k_i))
    assert scorer.calls == len(set(scorer.seen)) == min(budget, n)
    if budget >= rounds:
        scorer = CountingScorer(M[7])
        AXNIndex(rounds=rounds, seed=seed).fit(factorize_anchor_scores(M[:6])).search(
            scorer, k=1, budget=budget, first_stage=stage
        )
        assert scorer.calls == len(set(scorer.seen)) == min(budget, n)


def test_first_round_mixes_first_stage_and_anchors():
    M, stage = noisy(3)
    index = CURIndex(n_anchor_items=10, seed=0).fit_matrix(M[:40])
    scorer = CountingScorer(M[60])
    index.search(scorer, k=1, budget=10, first_stage=stage, n_first_stage=4)
    first = scorer.seen[:10]
    top4 = np.argsort(-stage)[:4].tolist()
    assert first[:4] == top4
    rest = [a for a in index.anchor_item_ids_.tolist() if a not in top4]
    assert first[4:] == rest[:6]
    # duplicates between the two sources leave room for further first-stage items; the size is always k_i
    items = first_round_items(5, np.arange(10.0), 2, np.array([9, 8, 0]), "test")
    assert items.tolist() == [9, 8, 0, 7, 6]


def test_no_first_stage_items_equals_default():
    M, stage = noisy(4)
    index = CURIndex(n_anchor_items=12, seed=1).fit_matrix(M[:40])
    plain = index.search(CountingScorer(M[60]), k=5, budget=60, rounds=4)
    zero = index.search(CountingScorer(M[60]), k=5, budget=60, rounds=4, first_stage=stage, n_first_stage=0)
    assert set(plain.scored[:12].tolist()) == set(zero.scored[:12].tolist())
    np.testing.assert_array_equal(plain.ids, zero.ids)


def test_perfect_first_stage_finds_top1_at_small_budget():
    M = low_rank(80, 500, rank=10, seed=5)
    index = CURIndex(n_anchor_items=5, seed=0).fit_matrix(M[:20])  # k_q = 20 > rank: CUR alone is good, not exact
    for row in M[40:60]:
        best = int(np.argmax(row))
        for rounds in (1, 3):
            result = index.search(CountingScorer(row), k=1, budget=6, rounds=rounds, first_stage=row)
            assert int(result.ids[0]) == best
        axn = AXNIndex(rounds=3).fit(factorize_anchor_scores(M[:20]))
        assert int(axn.search(CountingScorer(row), k=1, budget=6, first_stage=row).ids[0]) == best


def test_exact_recovery_on_rank_r_matrix():
    r = 6
    M = low_rank(70, 400, rank=r, seed=6)
    anchors, test = M[:20], M[40:]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 8))
    cur_random = CURIndex(n_anchor_items=10, seed=2).fit_matrix(anchors)
    cur_kmeans = CURIndex(n_anchor_items=10, anchor_items="kmeans", seed=2).fit_matrix(anchors, vectors)
    axn_columns = AXNIndex(rounds=5, seed=1).fit(factorize_anchor_scores(anchors))
    axn_svd = AXNIndex(rounds=5, seed=1).fit(factorize_anchor_scores(anchors, rank=r))
    for row in test:
        weak = row + 3.0 * rng.normal(size=row.shape)
        for k in (1, 10, 20):
            truth = exact_top_k(row, k)
            for result in (
                cur_random.search(CountingScorer(row), k=k, budget=50, rounds=5),
                cur_random.search(CountingScorer(row), k=k, budget=50, rounds=5, first_stage=weak),
                cur_kmeans.search(CountingScorer(row), k=k, budget=50, rounds=5, first_stage=weak, n_first_stage=4),
                axn_columns.search(CountingScorer(row), k=k, budget=50),
                axn_columns.search(CountingScorer(row), k=k, budget=50, first_stage=weak),
                axn_svd.search(CountingScorer(row), k=k, budget=50, first_stage=weak),
            ):
                assert recall_vs_exact(result.ids, truth, k) == 1.0
                np.testing.assert_allclose(result.approx_scores, row, atol=1e-6 * np.abs(row).max())


def test_axn_with_dual_encoder_vectors_recovers_linear_scores():
    rng = np.random.default_rng(7)
    V = rng.normal(size=(300, 8))  # "dual-encoder" item vectors; CE = a linear function of them plus an offset
    for _ in range(10):
        u = rng.normal(size=8)
        row = 3.0 * (V @ u) + 0.0
        de = V @ (u + 0.8 * rng.normal(size=8))  # a weaker query vector in the same space
        result = AXNIndex(rounds=4).fit(V).search(CountingScorer(row), k=10, budget=40, first_stage=de)
        assert recall_vs_exact(result.ids, exact_top_k(row, 10), 10) == 1.0


def test_axn_in_anchor_column_space_is_adacur():
    """With V = R_ancᵀ, mix 0 and the same pinv, AXN's ŝ is adaCUR's a · pinv(R_anc[:, A]) · R_anc."""
    M, stage = noisy(8)
    R = M[:40]
    for rounds, budget in ((5, 50), (4, 37), (2, 20)):
        cur = CURIndex(n_anchor_items=budget // rounds, seed=0).fit_matrix(R)
        axn = AXNIndex(rounds=rounds).fit(factorize_anchor_scores(R))
        a = cur.search(CountingScorer(M[60]), k=10, budget=budget, rounds=rounds, first_stage=stage)
        b = axn.search(CountingScorer(M[60]), k=10, budget=budget, first_stage=stage)
        np.testing.assert_array_equal(a.scored, b.scored)
        np.testing.assert_allclose(a.approx_scores, b.approx_scores, atol=1e-8)


def test_axn_full_mix_is_retrieve_and_rerank():
    M, stage = noisy(9)
    axn = AXNIndex(rounds=5, mix=1.0).fit(factorize_anchor_scores(M[:40]))
    result = axn.search(CountingScorer(M[60]), k=10, budget=50, first_stage=stage)
    rnr = retrieve_and_rerank(stage, CountingScorer(M[60]), k=10, budget=50)
    assert set(result.scored.tolist()) == set(rnr.scored.tolist())
    np.testing.assert_array_equal(result.ids, rnr.ids)
    one_round = AXNIndex(rounds=1).fit(factorize_anchor_scores(M[:40]))
    np.testing.assert_array_equal(
        one_round.search(CountingScorer(M[60]), k=10, budget=50, first_stage=stage).ids, rnr.ids
    )


def test_score_normalisation_matches_first_stage_distribution():
    rng = np.random.default_rng(10)
    de = rng.normal(size=(5, 100)) * 0.2 + 0.5
    ce = 4.0 * de - 1.0
    index = AXNIndex().fit(rng.normal(size=(100, 4)), anchor_scores=ce, anchor_first_stage=de)
    mapped = index.score_scale_ * (ce - index.score_shift_)
    np.testing.assert_allclose(mapped, de, atol=1e-10)
    assert index.offline_calls_ == 500
    assert AXNIndex().fit(rng.normal(size=(100, 4))).offline_calls_ == 0


def test_scale_calibration_leaves_exact_search_unchanged():
    # a pure rescaling (α = 0) does not change the least-squares fit; a shift α would, unless V can represent a
    # constant score, because Eq. 4 has no intercept
    M = low_rank(60, 200, rank=5, seed=11)
    V = factorize_anchor_scores(M[:20])
    plain = AXNIndex(rounds=4).fit(V)
    scaled = AXNIndex(rounds=4).fit(V, anchor_scores=M[:20], anchor_first_stage=0.1 * M[:20])
    assert abs(scaled.score_shift_) < 1e-10 and scaled.score_scale_ == pytest.approx(0.1)
    for row in M[40:45]:
        a = plain.search(CountingScorer(row), k=5, budget=40)
        b = scaled.search(CountingScorer(row), k=5, budget=40)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(b.approx_scores, row, atol=1e-6 * np.abs(row).max())


def test_bad_parameters():
    M, stage = noisy(12)
    index = CURIndex(n_anchor_items=10).fit_matrix(M[:40])
    scorer = CountingScorer(M[60])
    with pytest.raises(InvalidParameterError, match="n_first_stage"):
        index.search(scorer, k=5, budget=20, n_first_stage=3)  # without first_stage
    with pytest.raises(InvalidParameterError, match="n_first_stage"):
        index.search(scorer, k=5, budget=20, first_stage=stage, n_first_stage=11)
    with pytest.raises(InvalidParameterError, match="n_first_stage"):
        index.search(scorer, k=5, budget=20, first_stage=stage, n_first_stage=2.0)
    with pytest.raises(InvalidInputError, match="first_stage"):
        index.search(scorer, k=5, budget=20, first_stage=stage[:10])
    with pytest.raises(InvalidInputError, match="first_stage"):
        index.search(scorer, k=5, budget=20, first_stage=np.full(300, np.nan))
    with pytest.raises(NotFittedError):
        AXNIndex().search(scorer, k=5, budget=20)
    V = factorize_anchor_scores(M[:40])
    with pytest.raises(InvalidParameterError, match="'mix'"):
        AXNIndex(mix=1.5).fit(V)
    with pytest.raises(InvalidParameterError, match="'rounds'"):
        AXNIndex(rounds=0).fit(V)
    with pytest.raises(InvalidParameterError, match="'mix'"):
        AXNIndex(mix=0.5).fit(V).search(scorer, k=5, budget=20)  # mixing needs a first stage
    axn = AXNIndex(rounds=5).fit(V)
    with pytest.raises(InvalidParameterError, match="budget"):
        axn.search(scorer, k=5, budget=4)
    with pytest.raises(InvalidParameterError, match="'k'"):
        axn.search(scorer, k=301, budget=20)
    with pytest.raises(InvalidParameterError, match="n_first_stage"):
        axn.search(scorer, k=5, budget=20, n_first_stage=2)
    with pytest.raises(InvalidParameterError, match="n_first_stage"):
        axn.search(scorer, k=5, budget=20, first_stage=stage, n_first_stage=5)  # first round is 20 // 5 = 4
    with pytest.raises(InvalidParameterError, match="rank"):
        factorize_anchor_scores(M[:40], rank=41)
    with pytest.raises(InvalidInputError):
        factorize_anchor_scores(np.zeros((0, 3)))
    with pytest.raises(InvalidInputError, match="together"):
        AXNIndex().fit(V, anchor_scores=M[:2])
    with pytest.raises(InvalidInputError):
        AXNIndex().fit(np.zeros((0, 4)))
    with pytest.raises(InvalidInputError):
        AXNIndex().fit(V, anchor_scores=M[:2], anchor_first_stage=np.ones((2, 300)))  # constant first stage


def test_cur_experiment_table_on_synthetic_scores(monkeypatch, tmp_path):
    """benchmarks/cur_experiment.py's method table on a synthetic low-rank matrix (the real run needs the CE)."""
    from support import load_benchmark

    module = load_benchmark("cur_experiment")
    rng = np.random.default_rng(0)
    n_items, rank = 260, 6
    Q, V = rng.normal(size=(60, rank)), rng.normal(size=(n_items, rank))
    M = Q @ V.T
    vectors = V / np.linalg.norm(V, axis=1, keepdims=True)
    de = (Q + 0.5 * rng.normal(size=Q.shape)) @ vectors.T  # a weaker bi-encoder in the same space
    data = module.ScoreData(
        anchor=M[:40],
        dev=M[40:44],
        test=M[44:52],
        item_vectors=vectors,
        anchor_de=de[:40],
        dev_stages={"de": de[40:44]},
        test_stages={"de": de[44:52], "bm25": M[44:52]},  # "BM25" here is a perfect first stage
        anchor_vectors=Q[:40],
    )
    methods = module.build_methods(data, rounds=5, calib_queries=10, calib_items=20)
    auto = next(m for m in methods if m.name.startswith("auto"))  # `cur search --method auto`, calibrated on anchors
    assert all(auto.options(b)[0].split(" ", 1)[0] in ("rnr", "cur", "adacur") for b in module.BUDGETS)
    results, choices, timing = module.run_methods(data, methods, seeds=2)
    assert set(results) == {m.name for m in methods} == set(timing)
    for method in methods:
        for budget in module.BUDGETS:
            recalls = results[method.name][budget]
            assert recalls.shape == (2 if method.seeded else 1, 8, len(module.KS))
            assert ((recalls >= 0) & (recalls <= 1)).all()
    assert (results["RnR-BM25"][20][:, :, 0] == 1).all()  # perfect first stage: top-1 found
    assert (results["adaCUR (R=5, DE start)"][100] == 1).all()  # rank 6 ≤ k_q, k_i: exact after round 1
    assert choices["AXN (R=5, DE item vectors, DE start, λ on dev)"][50] in module.AXN_MIXES
    summary = {name: {b: module.summarize(r, n_boot=50) for b, r in by_b.items()} for name, by_b in results.items()}
    mean, lo, hi, half = summary["ANNCUR (random anchors)"][20][10]
    assert lo <= mean <= hi and half >= 0
    assert np.isnan(summary["adaCUR (R=5, DE start)"][20][10][3])  # deterministic: no seed interval
    lines = module.recall_tables(summary, {m.name: m.offline_calls for m in methods}, amortise_over=8)
    assert sum(line.startswith("| adaCUR (R=5, DE start) | 1,300.0 |") for line in lines) == len(module.KS)
    args = module.parse_args(["--test", "8", "--seeds", "2", "--anchor", "40", "--out", str(tmp_path / "cur.md")])
    info = {"history": {}, "ce_path": "ce", "ce_rho": 80.0, "ce_rho_engine": 79.9, "bi_rho": 82.0}
    info |= {"ours_pps": 100.0, "st_pps": 90.0, "hubness_ce": module.top_k_concentration(M[44:52])}
    info["hubness_de"] = module.top_k_concentration(de[44:52])
    assert info["hubness_ce"][0] <= 8 * 10 and 0 < info["hubness_ce"][1] <= 1
    info |= {"agree": 0.99, "n_items": n_items, "n_queries": 52}
    heat = np.ones((2, 2))
    offline = {m.name: m.offline_calls for m in methods}
    module.write_report(args, info, summary, choices, offline, timing, [10, 25], [10, 25], heat, heat)
    report = (tmp_path / "cur.md").read_text()
    assert "## Goals (B = 100)" in report and "adaCUR (R=5, DE start) ≥ RnR-DE at k=1" in report
    assert (tmp_path / "cur_recall.png").exists() and (tmp_path / "cur_heatmap.png").exists()
