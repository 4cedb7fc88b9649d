"""Choose (β, γ, k) for :class:`Whitening` on labelled dev pairs, robustly (kexue.fm 9079).

The family is Su Jianlin's generalised BERT-whitening x̃ = (x − βμ) U Λ^{−γ/2}, first k columns (kexue.fm 9079;
BERT-whitening: kexue.fm 8069, arXiv 2103.15316). The grid always holds the raw-equivalent setting (β=0, γ=0, full
k: a rotation, every cosine unchanged), so a plain argmax is never worse than raw *on dev* — but it loses on unseen
pairs (winner's curse), so the rules below leave raw only when the gain is established:

- ``"cv"`` (default): repeated k-fold cross-validation of the *selection* itself. In each fold the argmax over a
  small grid near raw is taken on the other folds and its gain over raw is measured on the held-out fold (nested,
  so the winner's curse is inside the estimate). Raw is left only when the lower confidence bound of the mean
  held-out gain is > 0, with the variance of repeated k-fold estimates corrected for the overlap of the training
  folds (Nadeau & Bengio, "Inference for the Generalization Error", Machine Learning 2003:
  var = (1/J + n_test/n_train) s² over the J fold gains), and only when a majority of the folds gained; then the
  argmax on all dev pairs is returned.
- ``"bootstrap"`` (the former default): a paired bootstrap over dev pairs of each setting's gain over raw on the
  full grid; the setting with the highest lower confidence bound wins if that bound is > 0.
- ``"argmax"``: the plain dev argmax (for comparison; not recommended).

With ``dev_groups`` (several tasks or subsets) the rules above guard the *aggregate*, the size-weighted mean of the
per-group Spearmans: a transform that helps two groups a lot can win it while it costs a third. ``group_guard=True``
(any rule) makes a setting a candidate only if its dev Spearman is not below raw's on **any** group of at least
:data:`GUARD_MIN_PAIRS` pairs, each group on its own; raw is kept when no setting passes. It is part of the
selection, so the cv rule applies it inside each fold too (a fold's candidates are the settings not below raw on any
group of its training folds) and the nested estimate is that of the guarded selection. The guard is a point
comparison, not a confidence bound: a bound ("not significantly below raw") would let through a loss that is within
noise, and the guard is there to keep every group at raw or above. It is checked on the dev pairs the setting was
chosen on, so it promises nothing on unseen pairs — it only refuses a setting that dev already shows losing
somewhere. With one group (no ``dev_groups``) it asks only that the choice be not below raw on dev, which the cv and
argmax rules already ensure.

When a rule keeps raw, :attr:`TuneResult.whitening` is None and :meth:`TuneResult.transform` returns the vectors
unchanged (not a float32 rotation, which moves cosines by ~1e-7 and reorders exact ties).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semspace.errors import InvalidInputError, check_param
from semspace.metrics import centred_ranks, rank_correlation, spearman
from semspace.transform.similarity import paired_cosine
from semspace.transform.spectrum import DEFAULT_EPS, Spectrum
from semspace.transform.stats import WhiteningStats, as_vectors
from semspace.transform.whitening import Whitening

logger = logging.getLogger(__name__)

RULES = ("cv", "bootstrap", "argmax")
DEFAULT_RULE = "cv"
# The group guard reads the dev groups of at least this many pairs (see _group_spearman).
GUARD_MIN_PAIRS = 30

# The full grid (the "bootstrap" and "argmax" rules).
DEFAULT_BETAS = (0.0, 1.0)
DEFAULT_GAMMAS = (0.0, 0.5, 1.0)
DEFAULT_KS = (None, 256, 128, 64)
# A small grid near raw (the "cv" rule): partial whitening at most, full dimension or a mild cut.
CV_BETAS = (0.0, 1.0)
CV_GAMMAS = (0.0, 0.25, 0.5)
CV_KS = (None, 256)
# The (β, γ, k) grid each rule searches: the cv rule a small grid near raw, the others the full grid.
RULE_GRIDS = {
    "cv": (CV_BETAS, CV_GAMMAS, CV_KS),
    "bootstrap": (DEFAULT_BETAS, DEFAULT_GAMMAS, DEFAULT_KS),
    "argmax": (DEFAULT_BETAS, DEFAULT_GAMMAS, DEFAULT_KS),
}

Setting = tuple[float, float, int | None]


@dataclass
class TuneResult:
    """The chosen setting, its dev score, the raw dev score and the whole grid (one dict per setting).

    `whitening` is None when the rule keeps raw: use :meth:`transform`, which is then the identity."""

    beta: float
    gamma: float
    n_components: int | None
    dev_spearman: float
    raw_dev_spearman: float
    gain_lower_bound: float
    whitening: Whitening | None
    grid: list[dict[str, float | int | None]] = field(default_factory=list)
    rule: str = DEFAULT_RULE
    group_guard: bool = False

    @property
    def is_raw(self) -> bool:
        return self.beta == 0 and self.gamma == 0 and self.n_components is None

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The chosen transform of X; when the rule kept raw, X itself, unchanged (a copy, same dtype)."""
        if self.whitening is None:
            return np.array(as_vectors(X, owner="X", expected_by="TuneResult"), copy=True)
        return self.whitening.transform(X)

    def describe(self) -> str:
        rule = f"rule {self.rule}, group guard" if self.group_guard else f"rule {self.rule}"
        if self.is_raw:
            return f"raw (no transform; {rule})"
        k = "full" if self.n_components is None else self.n_components
        return f"beta={self.beta:g}, gamma={self.gamma:g}, k={k} ({rule})"


def _is_raw(beta: float, gamma: float, k: int | None) -> bool:
    return beta == 0 and gamma == 0 and k is None


def _grid_cosines(
    stats: WhiteningStats,
    dev_a: np.ndarray,
    dev_b: np.ndarray,
    betas: tuple[float, ...],
    gammas: tuple[float, ...],
    ks: tuple[int | None, ...],
    eps: float,
) -> tuple[list[Setting], np.ndarray]:
    """Every grid setting (raw first) and the dev cosines under each, (S, n) float64."""
    d = stats.n_features
    assert d is not None
    k_values = sorted({d if k is None else int(k) for k in ks if k is None or 1 <= int(k) <= d}, reverse=True)
    raw_cos = paired_cosine(dev_a, dev_b)
    settings: list[Setting] = [(0.0, 0.0, None)]
    cosines = [raw_cos]
    for beta in dict.fromkeys(float(b) for b in betas):
        spectrum = Spectrum.from_stats(stats, beta)
        a_c, b_c = dev_a - spectrum.shift, dev_b - spectrum.shift
        for gamma in dict.fromkeys(float(g) for g in gammas):
            for k in k_values:
                n_components = None if k == d else k
                if _is_raw(beta, gamma, n_components):
                    continue  # the raw-equivalent rotation: cosines are exactly the raw ones (listed first)
                kernel = spectrum.kernel(gamma, k, eps)
                settings.append((beta, gamma, n_components))
                cosines.append(paired_cosine(a_c @ kernel, b_c @ kernel))
    return settings, np.vstack(cosines)


def _aggregate_spearman(
    x: np.ndarray, y: np.ndarray, labels: np.ndarray | None, y_ranks: dict | None = None
) -> np.ndarray:
    """Spearman of each row of x (R, m) with y (m,) or (R, m): one over all columns (labels None), else the
    size-weighted mean of the per-subset Spearmans (subsets = equal labels; those under 3 pairs are skipped).
    `y_ranks` caches y's centred ranks across calls with the same y and labels (the bootstrap's gold)."""
    y = np.broadcast_to(y, x.shape)
    blocks = _blocks(labels, 3)
    total, weight = np.zeros(len(x)), 0
    for label in blocks:
        cols = slice(None) if label is None else labels == label
        size = x.shape[1] if label is None else int(cols.sum())
        if y_ranks is None:
            ry = centred_ranks(y[:, cols])
        else:
            if label not in y_ranks:
                y_ranks[label] = centred_ranks(y[:, cols])
            ry = y_ranks[label]
        total += size * rank_correlation(centred_ranks(x[:, cols]), ry)
        weight += size
    return total / weight if weight else total


def _blocks(labels: np.ndarray | None, min_pairs: int) -> list[Any]:
    """The subsets a Spearman is taken over: each label with at least `min_pairs` pairs (labels None: [None], all)."""
    return [None] if labels is None else [lab for lab in np.unique(labels) if int((labels == lab).sum()) >= min_pairs]


def _group_spearman(x: np.ndarray, y: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Spearman of each row of x (R, m) with y (m,) per subset of at least :data:`GUARD_MIN_PAIRS` pairs (labels
    None: one group, all columns): (R, number of groups). Smaller subsets take no part in the group guard: a
    Spearman over a handful of pairs moves by whole tenths on noise and would veto every setting."""
    blocks = _blocks(labels, GUARD_MIN_PAIRS)
    columns = []
    for label in blocks:
        cols = slice(None) if label is None else labels == label
        columns.append(rank_correlation(centred_ranks(x[:, cols]), centred_ranks(y[None, cols])))
    return np.stack(columns, axis=1) if columns else np.zeros((len(x), 0))


def _not_below_raw(cosines: np.ndarray, gold: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(per setting: is its Spearman not below raw's (row 0) on any group, per setting: its smallest gain over raw
    across the groups); raw itself passes."""
    per_group = _group_spearman(cosines, gold, labels)
    if not per_group.shape[1]:
        logger.info("tune_whitening: no dev group has %d pairs; the group guard checks nothing", GUARD_MIN_PAIRS)
    gains = per_group - per_group[:1]
    worst = gains.min(axis=1) if gains.shape[1] else np.zeros(len(cosines))
    passes = worst >= 0
    passes[0] = True
    return passes, worst


def _guarded(scores: np.ndarray, passes: np.ndarray) -> np.ndarray:
    """`scores` with the settings that fail the group guard set to -inf (argmax never picks them; raw passes)."""
    return np.where(passes, scores, -np.inf)


def _folds(n: int, labels: np.ndarray | None, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random partition of range(n) into n_folds folds, stratified by label when labels are given."""
    if labels is None:
        return np.array_split(rng.permutation(n), n_folds)
    parts: list[list[np.ndarray]] = [[] for _ in range(n_folds)]
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        for f, chunk in enumerate(np.array_split(rng.permutation(members), n_folds)):
            parts[(f + int(label)) % n_folds].append(chunk)  # rotate, so small subsets do not pile up in fold 0
    return [np.sort(np.concatenate(p)) for p in parts]


def _cv_gains(
    cosines: np.ndarray,
    gold: np.ndarray,
    labels: np.ndarray | None,
    n_folds: int,
    n_repeats: int,
    seed: int,
    group_guard: bool = False,
) -> np.ndarray:
    """Held-out gain over raw (row 0) of the argmax selection, per fold of each repeat: (n_repeats * n_folds,).
    With `group_guard` the selection of each fold is among the settings not below raw on any group of its
    training folds."""
    n = len(gold)
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n_repeats):
        for held in _folds(n, labels, n_folds, rng):
            train = np.ones(n, dtype=bool)
            train[held] = False
            sub = None if labels is None else labels[train]
            scores = _aggregate_spearman(cosines[:, train], gold[train], sub)
            if group_guard:
                scores = _guarded(scores, _not_below_raw(cosines[:, train], gold[train], sub)[0])
            chosen = int(np.argmax(scores))  # ties go to the first row: raw
            if chosen == 0:
                gains.append(0.0)
                continue
            sub = None if labels is None else labels[held]
            pair = _aggregate_spearman(cosines[[0, chosen]][:, held], gold[held], sub)
            gains.append(float(pair[1] - pair[0]))
    return np.asarray(gains)


def _corrected_lower_bound(gains: np.ndarray, n_folds: int, confidence: float) -> float:
    """Lower confidence bound of the mean of repeated k-fold gains, Nadeau & Bengio's corrected resampled t."""
    from scipy.stats import t

    j = len(gains)
    mean = float(gains.mean())
    var = float(gains.var(ddof=1)) if j > 1 else 0.0
    if var == 0.0:
        return mean
    se = np.sqrt((1.0 / j + 1.0 / (n_folds - 1)) * var)
    return mean - float(t.ppf(confidence, j - 1)) * se


def _check_dev(
    d: int, dev_a: np.ndarray, dev_b: np.ndarray, dev_scores: np.ndarray, dev_groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(dev_a, dev_b, gold, subset labels or None), validated."""
    dev_a = as_vectors(dev_a, d, "dev_a")
    dev_b = as_vectors(dev_b, d, "dev_b")
    gold = np.asarray(dev_scores, dtype=np.float64)
    if not (len(dev_a) == len(dev_b) == len(gold)) or len(gold) < 3:
        raise InvalidInputError("dev_a, dev_b and dev_scores must have the same length (at least 3 pairs).")
    labels = None
    if dev_groups is not None:
        groups = np.asarray(dev_groups)
        if groups.shape != gold.shape:
            raise InvalidInputError("dev_groups must hold one label per dev pair.")
        labels = np.unique(groups, return_inverse=True)[1].reshape(-1)
    return dev_a, dev_b, gold, labels


def _check_resampling(n_bootstrap: int, n_folds: int, n_repeats: int, confidence: float) -> None:
    check_param(
        "n_bootstrap",
        "tune_whitening",
        isinstance(n_bootstrap, int) and n_bootstrap >= 0,
        "an int >= 0",
        n_bootstrap,
    )
    check_param("n_folds", "tune_whitening", isinstance(n_folds, int) and n_folds >= 2, "an int >= 2", n_folds)
    check_param("n_repeats", "tune_whitening", isinstance(n_repeats, int) and n_repeats >= 1, "an int >= 1", n_repeats)
    check_param("confidence", "tune_whitening", 0.5 <= confidence < 1, "a float in [0.5, 1)", confidence)


def _bootstrap_lower_bounds(
    cosines: np.ndarray, gold: np.ndarray, labels: np.ndarray | None, n_bootstrap: int, confidence: float, seed: int
) -> np.ndarray:
    """Per setting, the (1 − confidence) quantile of its paired bootstrap gain over raw (row 0; its own bound: 0)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        samples = rng.integers(0, len(gold), size=(n_bootstrap, len(gold)))
        boot_labels = None
    else:  # resample within each subset; the columns stay grouped by subset
        members = [np.flatnonzero(labels == u) for u in np.unique(labels)]
        samples = np.hstack([m[rng.integers(0, len(m), size=(n_bootstrap, len(m)))] for m in members])
        boot_labels = np.concatenate([np.full(len(m), u) for u, m in enumerate(members)])
    gold_boot, gold_ranks = gold[samples], {}  # the resampled gold is ranked once for every setting
    raw_boot = _aggregate_spearman(cosines[0][samples], gold_boot, boot_labels, gold_ranks)
    lower = np.zeros(len(cosines))
    for i in range(1, len(cosines)):
        boot = _aggregate_spearman(cosines[i][samples], gold_boot, boot_labels, gold_ranks)
        lower[i] = np.quantile(boot - raw_boot, 1.0 - confidence)
    return lower


def _choose_by_cv(
    cosines: np.ndarray,
    scores: np.ndarray,
    gold: np.ndarray,
    labels: np.ndarray | None,
    n_folds: int,
    n_repeats: int,
    confidence: float,
    seed: int,
    group_guard: bool = False,
) -> tuple[int, float]:
    """(chosen row, its gain's lower bound) by the cv rule: the dev argmax only when the nested cross-validated
    gain of the argmax selection has a positive corrected lower bound and wins in most folds; else raw (row 0).
    With `group_guard`, `scores` are already guarded (-inf where a setting fails) and so is each fold's selection."""
    if len(gold) < 2 * n_folds:
        logger.warning("tune_whitening: %d dev pairs are too few for %d folds; keeping raw", len(gold), n_folds)
        return 0, 0.0
    if not np.isfinite(scores[1:]).any():
        logger.debug("cv: no setting but raw is a candidate; keeping raw")
        return 0, 0.0
    gains = _cv_gains(cosines, gold, labels, n_folds, n_repeats, seed, group_guard)
    bound = _corrected_lower_bound(gains, n_folds, confidence)
    majority = float(np.mean(gains > 0)) > 0.5
    chosen = int(np.argmax(scores)) if (bound > 0 and majority) else 0
    logger.debug(
        "cv gains: mean %.5f, lower bound %.5f, %d/%d folds > 0",
        gains.mean(),
        bound,
        int((gains > 0).sum()),
        len(gains),
    )
    return chosen, (min(bound, 0.0) if chosen == 0 else bound)


def tune_whitening(
    fit: np.ndarray | WhiteningStats,
    dev_a: np.ndarray,
    dev_b: np.ndarray,
    dev_scores: np.ndarray,
    *,
    rule: str = DEFAULT_RULE,
    dev_groups: np.ndarray | None = None,
    group_guard: bool = False,
    betas: tuple[float, ...] | None = None,
    gammas: tuple[float, ...] | None = None,
    ks: tuple[int | None, ...] | None = None,
    n_bootstrap: int = 200,
    n_folds: int = 5,
    n_repeats: int = 4,
    confidence: float = 0.95,
    eps: float = DEFAULT_EPS,
    seed: int = 0,
) -> TuneResult:
    """Tune (β, γ, k) on dev pairs: `fit` vectors (or their stats) define μ/Σ; `dev_a[i]`, `dev_b[i]` are the
    vectors of pair i with gold `dev_scores[i]`.

    `rule` is ``"cv"`` (default; `n_folds` × `n_repeats` nested cross-validation, the small grid near raw),
    ``"bootstrap"`` (the former rule: `n_bootstrap` paired resamples, the full grid; `n_bootstrap=0` is a plain
    argmax, kept for compatibility) or ``"argmax"``; see the module docstring. `betas`, `gammas`, `ks` override
    the rule's grid (None in `ks`: all dimensions). `confidence` is the one-sided level of the lower bound.

    `dev_groups` (one subset label per dev pair, e.g. the STS12 subset) makes the dev score the size-weighted mean
    of the per-subset Spearmans — the `wmean` aggregation — instead of one Spearman over all pairs (`all`); tune
    on the aggregation you report. Folds and bootstrap resamples are then stratified by subset.

    `group_guard=True`: a setting is a candidate only if its dev Spearman is not below raw's on any subset of
    `dev_groups` (raw is kept when none is); the cv rule applies the guard inside its folds too. See the module
    docstring. The grid then records each setting's smallest per-subset gain (`min_group_gain`)."""
    check_param("rule", "tune_whitening", rule in RULES, f"one of {', '.join(RULES)}", rule)
    check_param("group_guard", "tune_whitening", isinstance(group_guard, bool), "a bool", group_guard)
    stats = fit if isinstance(fit, WhiteningStats) else WhiteningStats().update(fit)
    dev_a, dev_b, gold, labels = _check_dev(stats.n_features, dev_a, dev_b, dev_scores, dev_groups)
    _check_resampling(n_bootstrap, n_folds, n_repeats, confidence)
    if rule == "bootstrap" and n_bootstrap == 0:
        rule = "argmax"
    grid_betas, grid_gammas, grid_ks = RULE_GRIDS[rule]
    settings, cosines = _grid_cosines(
        stats,
        dev_a,
        dev_b,
        grid_betas if betas is None else tuple(betas),
        grid_gammas if gammas is None else tuple(gammas),
        grid_ks if ks is None else tuple(ks),
        eps,
    )
    if labels is None:
        scores = np.array([spearman(c, gold) for c in cosines])
    else:
        scores = _aggregate_spearman(cosines, gold, labels)
    raw_score = float(scores[0])
    lower = scores - raw_score  # per-setting lower bound: the dev gain itself for argmax and cv
    passes, worst = np.ones(len(settings), dtype=bool), None
    if group_guard:
        passes, worst = _not_below_raw(cosines, gold, labels)
        logger.info("tune_whitening: %d of %d settings pass the group guard", int(passes[1:].sum()), len(settings) - 1)
    if rule == "bootstrap":
        lower = _bootstrap_lower_bounds(cosines, gold, labels, n_bootstrap, confidence, seed)
        candidates = [i for i in range(1, len(settings)) if lower[i] > 0 and passes[i]]
        chosen = max(candidates, key=lambda i: lower[i]) if candidates else 0
        chosen_bound = float(lower[chosen])
    elif rule == "argmax":
        chosen = int(np.argmax(_guarded(scores, passes)))  # ties go to raw (listed first)
        chosen_bound = float(lower[chosen])
    else:
        chosen, chosen_bound = _choose_by_cv(
            cosines, _guarded(scores, passes), gold, labels, n_folds, n_repeats, confidence, seed, group_guard
        )
    result = _tune_result(stats, settings, scores, lower, chosen, chosen_bound, rule, eps, worst)
    logger.info("tune_whitening chose %s (dev %.4f vs raw %.4f)", result.describe(), result.dev_spearman, raw_score)
    return result


def _tune_result(
    stats: WhiteningStats,
    settings: list[Setting],
    scores: np.ndarray,
    lower: np.ndarray,
    chosen: int,
    chosen_bound: float,
    rule: str,
    eps: float,
    worst: np.ndarray | None = None,
) -> TuneResult:
    """The result of a tuning: the grid's scores and the `chosen` setting (row 0, raw, when nothing was chosen)
    with its whitening fitted on `stats`."""
    raw_score = float(scores[0])
    grid = [
        {
            "beta": beta,
            "gamma": gamma,
            "n_components": k,
            "dev_spearman": float(scores[i]),
            "gain": float(scores[i] - raw_score),
            **({"gain_lower_bound": float(lower[i])} if rule == "bootstrap" else {}),
            **({"min_group_gain": float(worst[i])} if worst is not None else {}),
        }
        for i, (beta, gamma, k) in enumerate(settings)
    ]
    beta, gamma, k = settings[chosen]
    whitening = None if chosen == 0 else Whitening(k, beta=beta, gamma=gamma, eps=eps).fit_stats(stats)
    return TuneResult(
        beta=beta,
        gamma=gamma,
        n_components=k,
        dev_spearman=float(scores[chosen]),
        raw_dev_spearman=raw_score,
        gain_lower_bound=0.0 if chosen == 0 and rule != "cv" else chosen_bound,
        whitening=whitening,
        grid=grid,
        rule=rule,
        group_guard=worst is not None,
    )
