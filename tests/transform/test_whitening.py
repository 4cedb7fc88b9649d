import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from semspace import Whitening, WhiteningStats
from semspace.errors import ArtifactError, InvalidInputError, InvalidParameterError, NotFittedError
from semspace.transform import paired_cosine


def correlated(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d) * 3


def cosine_matrix(X: np.ndarray) -> np.ndarray:
    Y = X / np.linalg.norm(X, axis=1, keepdims=True)
    return Y @ Y.T


@settings(max_examples=25, deadline=None)
@given(n=st.integers(40, 200), d=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_fitted_set_has_zero_mean_identity_cov(n, d, seed):
    X = correlated(n, d, seed)
    Y = Whitening().fit_transform(X).astype(np.float64)
    np.testing.assert_allclose(Y.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.cov(Y.T, bias=True), np.eye(d), atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(30, 150), d=st.integers(3, 10), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_truncated_whitening_has_identity_cov_k(n, d, k, seed):
    Y = Whitening(n_components=k).fit_transform(correlated(n, d, seed)).astype(np.float64)
    assert Y.shape == (n, k)
    np.testing.assert_allclose(np.cov(Y.T, bias=True).reshape(k, k), np.eye(k), atol=1e-3)


@settings(max_examples=30, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(1, 60), st.integers(1, 6)),
        elements=st.floats(-100, 100, allow_nan=False, width=32),
    ),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_merged_shard_stats_equal_one_pass(X, cuts):
    one = WhiteningStats().update(X)
    bounds = sorted({0, len(X), *[c for c in cuts if c <= len(X)]})
    merged = WhiteningStats()
    for lo, hi in itertools.pairwise(bounds):
        merged.merge(WhiteningStats().update(X[lo:hi]))
    assert merged.count == one.count
    np.testing.assert_allclose(merged.sum, one.sum, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(merged.sum_outer, one.sum_outer, rtol=1e-12, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 80), d=st.integers(2, 10), seed=st.integers(0, 10_000))
def test_beta_gamma_zero_full_k_preserves_every_cosine(n, d, seed):
    X = correlated(n, d, seed)
    Y = Whitening(beta=0.0, gamma=0.0).fit_transform(X)
    np.testing.assert_allclose(cosine_matrix(Y.astype(np.float64)), cosine_matrix(X), atol=1e-5)


@pytest.mark.parametrize("k", [2, 5, 8])
def test_cosine_rankings_equal_sklearn_pca_whiten(k):
    X = correlated(300, 10, seed=k)
    ours = Whitening(n_components=k).fit(X).transform(X[:40]).astype(np.float64)
    theirs = PCA(n_components=k, whiten=True).fit(X).transform(X[:40])
    ours_cos, theirs_cos = cosine_matrix(ours), cosine_matrix(theirs)
    np.testing.assert_allclose(ours_cos, theirs_cos, atol=1e-4)
    assert (np.argsort(-ours_cos, axis=1)[:, :10] == np.argsort(-theirs_cos, axis=1)[:, :10]).mean() > 0.99


@pytest.mark.parametrize("case", ["fewer_rows_than_dims", "duplicate_rows", "single_row", "constant"])
@pytest.mark.parametrize("beta,gamma", [(1.0, 1.0), (0.0, 1.0), (1.0, 0.5)])
def test_rank_deficient_never_inf_or_nan(case, beta, gamma):
    rng = np.random.default_rng(0)
    X = {
        "fewer_rows_than_dims": rng.normal(size=(5, 32)),
        "duplicate_rows": np.repeat(rng.normal(size=(3, 16)), 20, axis=0),
        "single_row": rng.normal(size=(1, 8)),
        "constant": np.ones((10, 8)),
    }[case]
    w = Whitening(beta=beta, gamma=gamma).fit(X)
    for data in (X, rng.normal(size=(7, X.shape[1]))):
        out = w.transform(data)
        assert np.isfinite(out).all()
    assert np.isfinite(w.kernel_).all()


def test_partial_fit_equals_fit_and_streaming_equals_batch():
    X = correlated(400, 8)
    w = Whitening(n_components=5)
    for chunk in np.array_split(X, 7):
        w.partial_fit(chunk)
    full = Whitening(n_components=5).fit(X)
    np.testing.assert_allclose(w.transform(X), full.transform(X), atol=1e-5)
    np.testing.assert_allclose(full.fit_transform(X), full.fit(X).transform(X))
    assert w.n_samples_seen_ == 400 and w.n_features_in_ == 8 and w.components_.shape == (5, 8)


def test_in_sklearn_pipeline_and_get_params():
    X = correlated(100, 6)
    pipe = Pipeline([("white", Whitening(n_components=3, beta=0.5)), ("id", FunctionTransformer())]).fit(X)
    assert pipe.transform(X).shape == (100, 3)
    assert pipe.get_params()["white__beta"] == 0.5
    assert Whitening().get_params() == {"n_components": None, "beta": 1.0, "gamma": 1.0, "eps": 1e-6}


def test_save_load_round_trip(tmp_path):
    X = correlated(200, 7)
    w = Whitening(n_components=4, beta=0.5, gamma=0.5).fit(X)
    loaded = Whitening.load(w.save(tmp_path / "w"))
    np.testing.assert_array_equal(loaded.transform(X), w.transform(X))
    assert loaded.get_params() == w.get_params()
    assert not list((tmp_path / "w").glob("*.tmp"))


def test_load_corrupt_or_missing(tmp_path):
    w = Whitening().fit(correlated(50, 4))
    folder = w.save(tmp_path / "w")
    (folder / "whitening.npz").write_bytes(b"truncated")
    with pytest.raises(ArtifactError, match="corrupt"):
        Whitening.load(folder)
    with pytest.raises(ArtifactError, match=r"not a saved semspace\.whitening"):
        Whitening.load(tmp_path / "nothing")
    config = json.loads((folder / "whitening.json").read_text())
    (folder / "whitening.json").write_text(json.dumps({**config, "format_version": 2}))
    with pytest.raises(ArtifactError, match="format version 2"):
        Whitening.load(folder)


def test_errors():
    X = correlated(50, 4)
    with pytest.raises(NotFittedError):
        Whitening().transform(X)
    with pytest.raises(InvalidParameterError, match=r"'n_components' parameter of Whitening must be .* Got 9"):
        Whitening(n_components=9).fit(X)
    w = Whitening().fit(X)
    with pytest.raises(InvalidInputError, match="3 features, but Whitening is expecting 4"):
        w.transform(X[:, :3])
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidInputError, match="row 3"):
        w.transform(bad)
    with pytest.raises(InvalidInputError):
        WhiteningStats().update(X).update(X[:, :2])


def test_paired_cosine_zero_row_is_zero_not_nan():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    assert np.isfinite(paired_cosine(a, a)).all()


@pytest.mark.parametrize("chunk_size", [1, 7, 50, 10_000])
def test_chunked_fit_equals_one_pass(chunk_size):
    """fit streams row chunks through WhiteningStats (IncrementalPCA style): same sums, same transform."""
    X = correlated(120, 6).astype(np.float32)
    one = WhiteningStats()
    one.sum, one.sum_outer, one.count = X.astype(np.float64).sum(0), X.astype(np.float64).T @ X, len(X)
    chunked = Whitening(n_components=4).fit(X, chunk_size=chunk_size)
    assert chunked.n_samples_seen_ == 120
    np.testing.assert_allclose(chunked.stats_.sum_outer, one.sum_outer, rtol=1e-12)
    np.testing.assert_allclose(chunked.transform(X), Whitening(n_components=4).fit_stats(one).transform(X), atol=1e-5)
    bad = X.copy()
    bad[97, 2] = np.inf
    with pytest.raises(InvalidInputError, match="row 97"):
        Whitening().fit(bad, chunk_size=chunk_size)


def test_fit_rejects_what_sklearn_rejects():
    with pytest.raises(InvalidInputError, match="0 sample"):
        Whitening().fit(np.zeros((0, 3)))
    with pytest.raises(InvalidInputError, match="0 feature"):
        Whitening().fit(np.zeros((3, 0)))
    with pytest.raises(InvalidInputError, match="Reshape your data"):
        Whitening().fit(np.zeros(3))
    with pytest.raises(InvalidInputError, match="Complex data not supported"):
        Whitening().fit(np.ones((3, 2)) * 1j)
