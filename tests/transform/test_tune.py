import numpy as np
import pytest

from semspace import tune_whitening
from semspace.errors import InvalidInputError
from semspace.metrics import spearman
from semspace.transform import paired_cosine


def anisotropic_pairs(n_pairs: int, d: int = 16, seed: int = 0, signal: float = 1.0):
    """Meaning lives in small-variance directions; a big shared nuisance direction dominates raw cosine."""
    rng = np.random.default_rng(seed)
    meaning = rng.normal(size=(n_pairs, d))
    noise_b = rng.normal(size=(n_pairs, d))
    closeness = rng.uniform(0, 1, size=n_pairs)
    other = closeness[:, None] * meaning + (1 - closeness[:, None]) * noise_b
    scales = np.geomspace(30, 0.3, d)  # strong anisotropy, as in raw BERT vectors
    offset = np.full(d, 10.0)
    a = meaning * scales * signal + offset + rng.normal(size=(n_pairs, d)) * scales
    b = other * scales * signal + offset + rng.normal(size=(n_pairs, d)) * scales
    return a, b, closeness


def test_grid_contains_raw_and_choice_never_below_raw_on_dev():
    a, b, gold = anisotropic_pairs(400)
    result = tune_whitening(np.vstack([a, b]), a, b, gold, ks=(None, 8))
    assert any(r["beta"] == 0 and r["gamma"] == 0 and r["n_components"] is None for r in result.grid)
    assert result.dev_spearman >= result.raw_dev_spearman
    assert result.raw_dev_spearman == pytest.approx(spearman(paired_cosine(a, b), gold))


def test_leaves_raw_when_gain_is_clear():
    a, b, gold = anisotropic_pairs(600, seed=1)
    result = tune_whitening(np.vstack([a, b]), a, b, gold)
    assert not result.is_raw
    assert result.gain_lower_bound > 0
    test_a, test_b, test_gold = anisotropic_pairs(600, seed=2)
    tuned = spearman(paired_cosine(result.whitening.transform(test_a), result.whitening.transform(test_b)), test_gold)
    assert tuned > spearman(paired_cosine(test_a, test_b), test_gold)


def test_stays_raw_when_gains_are_within_bootstrap_noise():
    # Isotropic vectors: no transform can help beyond noise, but a plain argmax still "finds" a winner.
    rng = np.random.default_rng(3)
    a = rng.normal(size=(60, 8))
    b = a + rng.normal(size=(60, 8)) * 2.0
    gold = paired_cosine(a, b) + rng.normal(size=60) * 0.5
    plain = tune_whitening(np.vstack([a, b]), a, b, gold, n_bootstrap=0)
    robust = tune_whitening(np.vstack([a, b]), a, b, gold, n_bootstrap=200)
    assert not plain.is_raw and plain.dev_spearman > plain.raw_dev_spearman
    assert robust.is_raw
    np.testing.assert_allclose(
        paired_cosine(robust.whitening.transform(a), robust.whitening.transform(b)),
        paired_cosine(a, b),
        atol=1e-5,
    )


def test_bad_dev_input():
    a, b, gold = anisotropic_pairs(50)
    with pytest.raises(InvalidInputError):
        tune_whitening(a, a, b[:10], gold)
    with pytest.raises(InvalidInputError):
        tune_whitening(a, a[:, :3], b[:, :3], gold)
