import numpy as np
import pytest

from semspace import tune_whitening
from semspace.errors import InvalidInputError, InvalidParameterError
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


@pytest.mark.parametrize("rule", ["cv", "bootstrap"])
def test_leaves_raw_when_gain_is_clear(rule):
    a, b, gold = anisotropic_pairs(600, seed=1)
    result = tune_whitening(np.vstack([a, b]), a, b, gold, rule=rule)
    assert not result.is_raw and result.rule == rule and result.whitening is not None
    assert result.gain_lower_bound > 0
    test_a, test_b, test_gold = anisotropic_pairs(600, seed=2)
    tuned = spearman(paired_cosine(result.transform(test_a), result.transform(test_b)), test_gold)
    assert tuned > spearman(paired_cosine(test_a, test_b), test_gold)


def test_default_rule_is_cv_on_the_small_grid():
    a, b, gold = anisotropic_pairs(300, seed=4)
    result = tune_whitening(np.vstack([a, b]), a, b, gold)
    assert result.rule == "cv"
    assert {(r["beta"], r["gamma"], r["n_components"]) for r in result.grid} <= {
        (beta, gamma, k) for beta in (0.0, 1.0) for gamma in (0.0, 0.25, 0.5) for k in (None, 256)
    }
    assert result.grid[0]["beta"] == 0 and result.grid[0]["gamma"] == 0 and result.grid[0]["n_components"] is None


def test_stays_raw_when_gains_are_within_bootstrap_noise():
    # Isotropic vectors: no transform can help beyond noise, but a plain argmax still "finds" a winner.
    rng = np.random.default_rng(3)
    a = rng.normal(size=(60, 8))
    b = a + rng.normal(size=(60, 8)) * 2.0
    gold = paired_cosine(a, b) + rng.normal(size=60) * 0.5
    plain = tune_whitening(np.vstack([a, b]), a, b, gold, rule="argmax")
    compat = tune_whitening(np.vstack([a, b]), a, b, gold, rule="bootstrap", n_bootstrap=0)  # the former spelling
    assert compat.rule == "argmax" and compat.describe() == plain.describe()
    assert not plain.is_raw and plain.dev_spearman > plain.raw_dev_spearman
    for rule in ("cv", "bootstrap"):
        robust = tune_whitening(np.vstack([a, b]), a, b, gold, rule=rule)
        assert robust.is_raw and robust.whitening is None and robust.gain_lower_bound <= 0
        assert robust.dev_spearman == robust.raw_dev_spearman


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeping_raw_is_the_identity(dtype):
    # Exact ties (identical texts) must stay tied: a float32 rotation moves cosines by ~1e-7 and reorders them.
    rng = np.random.default_rng(5)
    a = rng.normal(size=(40, 8)).astype(dtype)
    b = (a + rng.normal(size=(40, 8))).astype(dtype)
    b[::4] = a[::4]  # identical pairs: cosine ties
    gold = rng.uniform(size=40)
    result = tune_whitening(np.vstack([a, b]), a, b, gold, rule="cv")
    assert result.is_raw
    out = result.transform(a)
    assert out.dtype == a.dtype and np.array_equal(out, a) and out is not a
    assert np.array_equal(paired_cosine(result.transform(a), result.transform(b)), paired_cosine(a, b))


def test_too_few_dev_pairs_for_the_folds_keep_raw():
    a, b, gold = anisotropic_pairs(9, seed=1)
    result = tune_whitening(np.vstack([a, b]), a, b, gold, n_folds=5)
    assert result.is_raw and result.whitening is None


def test_unknown_rule_and_bad_folds():
    a, b, gold = anisotropic_pairs(50)
    with pytest.raises(InvalidParameterError, match="rule"):
        tune_whitening(a, a, b, gold, rule="best")
    with pytest.raises(InvalidParameterError, match="n_folds"):
        tune_whitening(a, a, b, gold, n_folds=1)


def test_bad_dev_input():
    a, b, gold = anisotropic_pairs(50)
    with pytest.raises(InvalidInputError):
        tune_whitening(a, a, b[:10], gold)
    with pytest.raises(InvalidInputError):
        tune_whitening(a, a[:, :3], b[:, :3], gold)


@pytest.mark.parametrize("rule", ["cv", "bootstrap", "argmax"])
def test_dev_groups_tune_on_the_weighted_mean_of_subset_spearmans(rule):
    a, b, gold = anisotropic_pairs(300, seed=6)
    groups = np.repeat(["x", "y", "z"], [60, 90, 150])
    result = tune_whitening(np.vstack([a, b]), a, b, gold, rule=rule, dev_groups=groups, n_bootstrap=50)
    raw = paired_cosine(a, b)
    wmean = sum(spearman(raw[groups == g], gold[groups == g]) * (groups == g).sum() for g in "xyz") / 300
    assert result.raw_dev_spearman == pytest.approx(wmean)
    assert result.raw_dev_spearman != pytest.approx(spearman(raw, gold))
    assert not result.is_raw  # the anisotropic signal is there in every subset


def test_dev_groups_must_match_the_pairs():
    a, b, gold = anisotropic_pairs(50)
    with pytest.raises(InvalidInputError, match="dev_groups"):
        tune_whitening(a, a, b, gold, dev_groups=np.zeros(49))


def two_groups_pulling_apart(n_helped: int = 300, n_hurt: int = 200):
    """Group "helped": anisotropic pairs that whitening repairs; group "hurt": pairs from the same distribution whose
    gold is their raw cosine (raw is perfect there, any real transform loses). The helped group's gain outweighs the
    hurt group's loss in the weighted mean."""
    a1, b1, gold1 = anisotropic_pairs(n_helped, seed=7)
    a2, b2, _ = anisotropic_pairs(n_hurt, seed=8)
    a, b = np.vstack([a1, a2]), np.vstack([b1, b2])
    gold = np.concatenate([gold1, paired_cosine(a2, b2)])
    return a, b, gold, np.repeat(["helped", "hurt"], [n_helped, n_hurt])


def per_group(result, a, b, gold, groups):
    cos = paired_cosine(result.transform(a), result.transform(b))
    return {g: spearman(cos[groups == g], gold[groups == g]) for g in np.unique(groups)}


@pytest.mark.parametrize("rule", ["cv", "bootstrap", "argmax"])
def test_group_guard_refuses_a_setting_below_raw_on_one_group(rule):
    a, b, gold, groups = two_groups_pulling_apart()
    fit = np.vstack([a, b])
    raw = {g: spearman(paired_cosine(a, b)[groups == g], gold[groups == g]) for g in ("helped", "hurt")}
    plain = tune_whitening(fit, a, b, gold, rule=rule, dev_groups=groups, n_bootstrap=50)
    # the aggregate rules whiten: the helped group gains more than the hurt group loses
    assert not plain.is_raw and plain.dev_spearman > plain.raw_dev_spearman
    scores = per_group(plain, a, b, gold, groups)
    assert scores["helped"] > raw["helped"] and scores["hurt"] < raw["hurt"]
    guarded = tune_whitening(fit, a, b, gold, rule=rule, dev_groups=groups, n_bootstrap=50, group_guard=True)
    assert guarded.is_raw and guarded.whitening is None and guarded.group_guard
    assert guarded.describe() == f"raw (no transform; rule {rule}, group guard)"
    assert [r["min_group_gain"] < 0 for r in guarded.grid] == [False] + [True] * (len(guarded.grid) - 1)


def test_group_guard_keeps_a_choice_no_group_loses_on():
    a, b, gold = anisotropic_pairs(300, seed=6)
    groups = np.repeat(["x", "y", "z"], [60, 90, 150])
    plain = tune_whitening(np.vstack([a, b]), a, b, gold, dev_groups=groups)
    guarded = tune_whitening(np.vstack([a, b]), a, b, gold, dev_groups=groups, group_guard=True)
    setting = (plain.beta, plain.gamma, plain.n_components)
    row = next(r for r in guarded.grid if (r["beta"], r["gamma"], r["n_components"]) == setting)
    assert not plain.is_raw and row["min_group_gain"] > 0  # whitening helps every subset here
    assert (guarded.beta, guarded.gamma, guarded.n_components) == setting
    assert guarded.dev_spearman == plain.dev_spearman and guarded.gain_lower_bound > 0


def test_group_guard_ignores_groups_too_small_to_read():
    """A group under GUARD_MIN_PAIRS pairs (its Spearman moves by tenths on noise) takes no part in the guard."""
    from semspace.transform.tune import GUARD_MIN_PAIRS, _not_below_raw

    rng = np.random.default_rng(0)
    big, tiny = 100, GUARD_MIN_PAIRS - 1
    gold = rng.normal(size=big + tiny)
    labels = np.repeat(["big", "tiny"], [big, tiny])
    raw = gold + rng.normal(scale=1.0, size=len(gold))
    better = raw.copy()
    better[:big] = gold[:big] + rng.normal(scale=0.1, size=big)  # gains on the big group
    better[big:] = -gold[big:]  # loses everything on the tiny one
    passes, worst = _not_below_raw(np.vstack([raw, better]), gold, labels)
    assert passes.tolist() == [True, True] and worst[1] > 0
    passes, worst = _not_below_raw(np.vstack([raw, better])[:, big:], gold[big:], labels[big:])
    assert passes.tolist() == [True, True] and worst.tolist() == [0, 0]  # no readable group: nothing vetoed


def test_group_guard_without_groups_and_bad_value():
    a, b, gold = anisotropic_pairs(300, seed=1)
    plain = tune_whitening(np.vstack([a, b]), a, b, gold)
    guarded = tune_whitening(np.vstack([a, b]), a, b, gold, group_guard=True)
    assert (guarded.beta, guarded.gamma, guarded.n_components) == (plain.beta, plain.gamma, plain.n_components)
    with pytest.raises(InvalidParameterError, match="group_guard"):
        tune_whitening(a, a, b, gold, group_guard="yes")
