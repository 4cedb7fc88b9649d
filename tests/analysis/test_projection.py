"""Random projection and the dimension rules (REFERENCE §5): JL holds empirically; PCA beats RP on real vectors."""

import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from semspace.errors import InvalidInputError, InvalidParameterError, NotFittedError
from semspace.metrics import spearman
from semspace.transform import Whitening
from semspace.transform.projection import RandomProjection, entropy_dimension, jl_dimension
from semspace.transform.similarity import paired_cosine


def test_rules_match_the_reference_numbers():
    assert entropy_dimension(100_000) == 96  # REFERENCE §5: N = 100k → 96
    assert entropy_dimension(5_000_000) in (128, 129)  # "→ 128" in the post, which rounds 128.5
    assert jl_dimension(1000, 0.5) == math.ceil(24 * math.log(1000) / 0.25) == 664
    assert jl_dimension(1, 0.5) == entropy_dimension(1) == 1
    assert jl_dimension(10_000, 0.1) > jl_dimension(10_000, 0.2) > jl_dimension(1000, 0.2)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: jl_dimension(0, 0.5), "n_points"),
        (lambda: jl_dimension(10.5, 0.5), "n_points"),
        (lambda: jl_dimension(True, 0.5), "n_points"),
        (lambda: jl_dimension(10, 0.0), "eps"),
        (lambda: jl_dimension(10, 1.0), "eps"),
        (lambda: jl_dimension(10, "0.5"), "eps"),
        (lambda: entropy_dimension(-3), "n_points"),
    ],
)
def test_rule_parameters_are_validated(call, name):
    with pytest.raises(InvalidParameterError, match=rf"The '{name}' parameter of \w+ must be .* Got .* instead\."):
        call()


def test_projection_shape_scale_and_seed():
    X = np.random.default_rng(0).normal(size=(50, 300))
    rp = RandomProjection(200, seed=3).fit(X)
    assert rp.components_.shape == (200, 300) and rp.kernel_.shape == (300, 200)
    assert rp.n_features_in_ == 300 and rp.n_components_ == 200
    # Entries N(0, 1/n): the sample variance of 60k entries is within a few % of 1/200.
    assert abs(rp.components_.var() * 200 - 1) < 0.05
    assert abs(rp.components_.mean()) < 3 / math.sqrt(rp.components_.size * 200)
    Y = rp.transform(X)
    assert Y.dtype == np.float32 and Y.shape == (50, 200)
    np.testing.assert_array_equal(Y, RandomProjection(200, seed=3).fit_transform(X))
    assert not np.allclose(Y, RandomProjection(200, seed=4).fit_transform(X))
    # Norms are kept in expectation: the mean squared-norm ratio is near 1.
    ratio = (Y.astype(np.float64) ** 2).sum(1) / (X**2).sum(1)
    assert abs(ratio.mean() - 1) < 0.05


def test_projection_is_a_sklearn_transformer():
    X = np.random.default_rng(1).normal(size=(20, 16))
    rp = RandomProjection(4, seed=0)
    assert rp.get_params() == {"n_components": 4, "seed": 0}
    assert clone(rp).get_params() == rp.get_params()
    pipe = Pipeline([("rp", RandomProjection(8)), ("white", Whitening(n_components=3))])
    assert pipe.fit_transform(X).shape == (20, 3)


def test_projection_errors():
    X = np.ones((4, 3))
    with pytest.raises(NotFittedError):
        RandomProjection(2).transform(X)
    with pytest.raises(InvalidParameterError, match="'n_components' parameter of RandomProjection"):
        RandomProjection(0).fit(X)
    with pytest.raises(InvalidParameterError, match="'seed' parameter of RandomProjection"):
        RandomProjection(2, seed=-1).fit(X)
    rp = RandomProjection(2).fit(X)
    with pytest.raises(InvalidInputError, match="5 features, but RandomProjection is expecting 3"):
        rp.transform(np.ones((4, 5)))
    with pytest.raises(InvalidInputError, match="NaN"):
        rp.transform(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(InvalidInputError, match="2-D"):
        rp.transform(np.ones(3))


def _pairwise_sq(X: np.ndarray) -> np.ndarray:
    X = X.astype(np.float64)
    sq = (X * X).sum(1)
    D = sq[:, None] + sq[None, :] - 2 * X @ X.T
    return D[np.triu_indices(len(X), k=1)]


def test_jl_guarantee_holds_at_the_bound():
    """All N(N−1)/2 squared distances of N = 1000 points stay within 1 ± ε at n = jl_dimension(N, ε)."""
    n_points, eps = 1000, 0.5
    k = jl_dimension(n_points, eps)
    rng = np.random.default_rng(0)
    # Anisotropic, non-centred points: the lemma does not care about the distribution.
    X = rng.normal(size=(n_points, 800)) * np.linspace(0.1, 3.0, 800) + 5.0
    original = _pairwise_sq(X)
    seeds = range(20)
    ok = 0
    for seed in seeds:
        ratio = _pairwise_sq(RandomProjection(k, seed=seed).fit_transform(X)) / original
        ok += bool(ratio.min() >= 1 - eps and ratio.max() <= 1 + eps)
    assert ok >= 0.95 * len(seeds)


@pytest.mark.slow
def test_random_projection_loses_more_than_pca_on_real_embeddings():
    """Bundled MiniLM on the vendored STS-B dev sample (400 sentences): at equal k, PCA keeps more Spearman."""
    from semspace.data import load_sample
    from semspace.encode import Encoder

    dev = load_sample()["dev"]
    encoder = Encoder(show_progress_bar=False)
    a, b = encoder.encode(dev.sentences1), encoder.encode(dev.sentences2)
    corpus = np.concatenate([a, b])  # unsupervised fit on the target sentences, as BERT-whitening does
    for k in (16, 32, 64):
        pca = Whitening(n_components=k, beta=1.0, gamma=0.0).fit(corpus)
        pca_rho = spearman(paired_cosine(pca.transform(a), pca.transform(b)), dev.scores)
        rp_rhos = []
        for seed in range(5):
            rp = RandomProjection(k, seed=seed).fit(corpus)
            rp_rhos.append(spearman(paired_cosine(rp.transform(a), rp.transform(b)), dev.scores))
        assert np.mean(rp_rhos) < pca_rho, (k, pca_rho, rp_rhos)
