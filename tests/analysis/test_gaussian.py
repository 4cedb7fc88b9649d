"""Gaussian KL / Bhattacharyya / W2 (REFERENCE §5): closed forms, Monte Carlo, two W2 forms, singular covariances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from semspace.analysis import (
    GaussianFit,
    bhattacharyya,
    drift_report,
    isotropy_score,
    kl_divergence,
    mean_cosine_to_centroid,
    orthogonal_map,
    wasserstein2,
)
from semspace.errors import InvalidInputError, InvalidParameterError, SingularCovarianceError
from semspace.transform import WhiteningStats


def random_gaussian(d: int, seed: int, rank: int | None = None, scale: float = 1.0) -> GaussianFit:
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(d, rank or d)) * scale
    cov = L @ L.T + (0 if rank else 0.05 * scale**2) * np.eye(d)
    return GaussianFit(rng.normal(size=d) * 2, cov, 100)


def naive_kl(p: GaussianFit, q: GaussianFit) -> float:
    inv = np.linalg.inv(q.cov)
    delta = p.mean - q.mean
    m = inv @ p.cov
    return 0.5 * (delta @ inv @ delta - np.linalg.slogdet(m)[1] + np.trace(m) - p.dim)


def naive_bhattacharyya(p: GaussianFit, q: GaussianFit) -> float:
    mean_cov = (p.cov + q.cov) / 2
    delta = p.mean - q.mean
    logdet = np.linalg.slogdet(mean_cov)[1] - 0.5 * (np.linalg.slogdet(p.cov)[1] + np.linalg.slogdet(q.cov)[1])
    return delta @ np.linalg.inv(mean_cov) @ delta / 8 + 0.5 * logdet


one_d = st.tuples(st.floats(-5, 5), st.floats(0.1, 5))


@settings(max_examples=50, deadline=None)
@given(p=one_d, q=one_d)
def test_one_dimensional_closed_forms(p, q):
    (m1, s1), (m2, s2) = p, q
    gp = GaussianFit(np.array([m1]), np.array([[s1**2]]), 10)
    gq = GaussianFit(np.array([m2]), np.array([[s2**2]]), 10)
    kl = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    bc = (m1 - m2) ** 2 / (4 * (s1**2 + s2**2)) + 0.5 * np.log((s1**2 + s2**2) / (2 * s1 * s2))
    w2 = np.sqrt((m1 - m2) ** 2 + (s1 - s2) ** 2)
    assert kl_divergence(gp, gq) == pytest.approx(kl, rel=1e-9, abs=1e-12)
    assert bhattacharyya(gp, gq) == pytest.approx(bc, rel=1e-9, abs=1e-12)
    for method in ("symmetric", "product"):
        assert wasserstein2(gp, gq, method=method) == pytest.approx(w2, rel=1e-7, abs=1e-7)


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_match_the_textbook_formulas(d, seed):
    p, q = random_gaussian(d, seed), random_gaussian(d, seed + 1)
    assert kl_divergence(p, q) == pytest.approx(naive_kl(p, q), rel=1e-7, abs=1e-9)
    assert kl_divergence(q, p) == pytest.approx(naive_kl(q, p), rel=1e-7, abs=1e-9)
    assert bhattacharyya(p, q) == pytest.approx(naive_bhattacharyya(p, q), rel=1e-7, abs=1e-9)
    assert bhattacharyya(p, q) == pytest.approx(bhattacharyya(q, p), rel=1e-9, abs=1e-12)
    assert kl_divergence(p, q) >= 0 and bhattacharyya(p, q) >= 0


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 8), seed=st.integers(0, 10_000), rank=st.integers(1, 8))
def test_w2_equal_covariances_is_the_mean_distance_and_both_trace_forms_agree(d, seed, rank):
    p = random_gaussian(d, seed, rank=min(rank, d))  # possibly singular: W2 needs no inverse
    q = random_gaussian(d, seed + 1)
    shifted = GaussianFit(q.mean, p.cov, 10)
    assert wasserstein2(p, shifted) == pytest.approx(np.linalg.norm(p.mean - q.mean), rel=1e-6, abs=1e-6)
    assert wasserstein2(p, q, method="symmetric") == pytest.approx(wasserstein2(p, q, method="product"), rel=1e-6)
    assert wasserstein2(p, q) == pytest.approx(wasserstein2(q, p), rel=1e-6)


def test_w2_commuting_covariances():
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.0])
    p = GaussianFit(np.zeros(3), np.diag(a), 10)
    q = GaussianFit(np.ones(3), np.diag(b), 10)
    expected = np.sqrt(3 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert wasserstein2(p, q) == pytest.approx(expected, rel=1e-12)


def test_identical_gaussians_are_at_distance_zero():
    p = random_gaussian(6, 0)
    assert kl_divergence(p, p) == pytest.approx(0, abs=1e-12)
    assert bhattacharyya(p, p) == pytest.approx(0, abs=1e-12)
    assert wasserstein2(p, p) == pytest.approx(0, abs=1e-6)
    X = np.random.default_rng(0).normal(size=(200, 5))
    assert kl_divergence(X, X.copy()) == pytest.approx(0, abs=1e-12)


def test_kl_matches_a_monte_carlo_estimate():
    p, q = random_gaussian(3, 10), random_gaussian(3, 11)
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal(p.mean, p.cov, size=200_000)
    log_ratio = multivariate_normal(p.mean, p.cov).logpdf(x) - multivariate_normal(q.mean, q.cov).logpdf(x)
    estimate, stderr = log_ratio.mean(), log_ratio.std() / np.sqrt(len(x))
    assert abs(kl_divergence(p, q) - estimate) < 4 * stderr + 1e-3


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_kl_and_bhattacharyya_are_affine_invariant(d, seed):
    p, q = random_gaussian(d, seed), random_gaussian(d, seed + 1)
    rng = np.random.default_rng(seed + 2)
    M = rng.normal(size=(d, d)) + 3 * np.eye(d)
    shift = rng.normal(size=d)

    def move(g):
        return GaussianFit(M @ g.mean + shift, M @ g.cov @ M.T, g.count)

    assert kl_divergence(move(p), move(q)) == pytest.approx(kl_divergence(p, q), rel=1e-5, abs=1e-7)
    assert bhattacharyya(move(p), move(q)) == pytest.approx(bhattacharyya(p, q), rel=1e-5, abs=1e-7)


def test_inputs_stats_and_vectors_give_the_same_fit():
    X = np.random.default_rng(3).normal(size=(300, 4)) @ np.diag([1, 2, 3, 4])
    Y = np.random.default_rng(4).normal(size=(250, 4)) + 1
    merged = WhiteningStats().update(X[:100]).merge(WhiteningStats().update(X[100:]))
    by_vectors = kl_divergence(X, Y)
    assert kl_divergence(merged, WhiteningStats().update(Y)) == pytest.approx(by_vectors, rel=1e-10)
    assert kl_divergence(GaussianFit.from_vectors(X), GaussianFit.from_vectors(Y)) == pytest.approx(by_vectors)
    fit = GaussianFit.from_vectors(X)
    np.testing.assert_allclose(fit.cov, np.cov(X.T, bias=True), rtol=1e-10, atol=1e-12)
    assert fit.dim == 4 and fit.count == 300 and fit.cov.dtype == np.float64


def test_singular_covariance_needs_eps():
    rng = np.random.default_rng(0)
    few = rng.normal(size=(5, 10))  # 5 samples in 10 dimensions: rank 4
    many = rng.normal(size=(500, 10))
    for call in (kl_divergence, bhattacharyya):
        with pytest.raises(SingularCovarianceError, match=r"pass eps .*5 samples for 10 dimensions|5 samples"):
            call(few, many)
        with pytest.raises(SingularCovarianceError, match="eps"):
            call(many, few)
        assert np.isfinite(call(few, many, eps=1e-3)) and call(few, many, eps=1e-3) > 0
    assert issubclass(SingularCovarianceError, InvalidInputError)
    flat = np.column_stack([many[:, 0], many[:, 0]])  # exactly collinear columns
    with pytest.raises(SingularCovarianceError, match="ill-conditioned"):
        kl_divergence(flat, many[:, :2])
    assert np.isfinite(wasserstein2(few, many))  # W2 has no inverse


def test_small_ridge_barely_moves_well_conditioned_results():
    p, q = random_gaussian(5, 1), random_gaussian(5, 2)
    assert kl_divergence(p, q, eps=1e-9) == pytest.approx(kl_divergence(p, q), rel=1e-6)
    assert bhattacharyya(p, q, eps=1e-9) == pytest.approx(bhattacharyya(p, q), rel=1e-6)


def test_bad_arguments():
    p = random_gaussian(3, 0)
    with pytest.raises(InvalidParameterError, match=r"The 'eps' parameter of kl_divergence must be"):
        kl_divergence(p, p, eps=0.0)
    with pytest.raises(InvalidParameterError, match="'method' parameter of wasserstein2"):
        wasserstein2(p, p, method="fast")
    with pytest.raises(InvalidInputError, match="dimensions"):
        bhattacharyya(p, random_gaussian(4, 0))
    with pytest.raises(InvalidInputError, match="NaN"):
        kl_divergence(np.array([[np.nan, 1.0], [0.0, 1.0]]), p)


def test_mean_cosine_to_centroid():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 20))
    assert abs(mean_cosine_to_centroid(X - X.mean(0) + 1e-9)) < 0.1
    assert mean_cosine_to_centroid(X + 20) > 0.95
    assert mean_cosine_to_centroid(np.zeros((3, 4))) == 0.0


def test_isotropy_score():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 50))
    iso = isotropy_score(X)
    assert 0.9 < iso <= 1.0
    assert isotropy_score(X + 2) < 0.3 < iso  # one dominant direction
    assert isotropy_score(X * 100) == pytest.approx(iso)  # normalised rows: scale-free
    assert 0 < isotropy_score(X * 3, normalize=False) < isotropy_score(X, normalize=False)  # the paper's form is not
    # Rotation-invariant: the eigenvectors rotate with the data, and both signs are used.
    T = orthogonal_map(np.eye(50)[0], np.ones(50) / np.sqrt(50), kind="rotation")
    assert isotropy_score((X + 1) @ T.T) == pytest.approx(isotropy_score(X + 1), rel=1e-9)


def test_drift_report():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(8, 8))
    A = rng.normal(size=(600, 8)) @ mix + 3
    B = rng.normal(size=(500, 8)) @ mix + 3.5
    report = drift_report(A, B, names=("docs", "queries"))
    assert report["names"] == ["docs", "queries"] and report["dim"] == 8 and report["eps"] is None
    assert report["kl_ab"] > 0 and report["kl_ba"] > 0 and report["bhattacharyya"] > 0
    assert report["w2"] >= report["mean_distance"] > 0
    docs = report["sets"]["docs"]
    assert docs["n"] == 600 and report["sets"]["queries"]["n"] == 500
    assert docs["mean_cos_raw"] > 0.5 > abs(docs["mean_cos_whitened"])
    assert docs["isotropy_whitened"] > docs["isotropy_raw"]
    same = drift_report(A, A)
    assert same["kl_ab"] == pytest.approx(0, abs=1e-10) and same["w2"] == pytest.approx(0, abs=1e-5)
    with pytest.raises(SingularCovarianceError, match="covariance of queries"):
        drift_report(A, B[:5], names=("docs", "queries"))
    with pytest.raises(InvalidInputError, match="at least 2 vectors"):
        drift_report(A, B[:1])
    with pytest.raises(InvalidInputError, match="dimensions"):
        drift_report(A, B[:, :4])
    assert drift_report(A, B[:5], eps=1e-3)["ridge"] > 0


def test_drift_results_script_logic_on_tiny_data(tmp_path):
    """benchmarks/drift_results.py's tables, reading and heat map on random sets (the real run needs the cache)."""
    from support import load_benchmark

    module = load_benchmark("drift_results")
    rng = np.random.default_rng(0)
    far = {name: rng.normal(size=(300, 6)) * (1 + i) + i for i, name in enumerate("ABC")}
    same = {name: rng.normal(size=(200, 6)) for name in ("train", "dev")}
    groups = {
        title: (list(sets), module.distance_matrices(sets), module.set_summary(sets))
        for title, sets in {"far": far, "same": same}.items()
    }
    matrices = groups["far"][1]
    assert np.all(np.diag(matrices["kl"]) == 0) and matrices["kl"][0, 1] != matrices["kl"][1, 0]
    np.testing.assert_allclose(matrices["bhattacharyya"], matrices["bhattacharyya"].T)
    assert matrices["bhattacharyya"][0, 2] > 10 * matrices["null_bhattacharyya"][0, 2]
    path = module.write_report(groups, tmp_path, "cmd", "machine")
    text = path.read_text(encoding="utf-8")
    assert "all the sets differ by more than sampling noise" in text  # the far group
    assert "indistinguishable from a random split" in text  # the same-distribution group
    assert (tmp_path / "drift_heatmap.png").read_bytes().startswith(b"\x89PNG")
