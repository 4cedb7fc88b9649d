"""Choose (β, γ, k) for :class:`Whitening` on labelled dev pairs, robustly (REFERENCE §2, kexue.fm 9079).

The grid always holds the raw-equivalent setting (β=0, γ=0, full k: a rotation, every cosine unchanged), so the
choice is never worse than raw *on dev*. A plain argmax over the grid can still lose on test (winner's curse:
measured −0.47 on Chinese STS-B with multilingual-e5-small), so the rule is a paired bootstrap over dev pairs:
each setting's gain over raw is resampled, and a setting replaces raw only when the lower confidence bound of
its gain is above 0. Among those, the one with the highest lower bound wins (the largest gain we are sure of).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from semspace.errors import InvalidInputError, check_param
from semspace.metrics import rowwise_spearman, spearman
from semspace.transform.similarity import paired_cosine
from semspace.transform.spectrum import DEFAULT_EPS, Spectrum
from semspace.transform.stats import WhiteningStats, as_vectors
from semspace.transform.whitening import Whitening

logger = logging.getLogger(__name__)

DEFAULT_BETAS = (0.0, 1.0)
DEFAULT_GAMMAS = (0.0, 0.5, 1.0)
DEFAULT_KS = (None, 256, 128, 64)


@dataclass
class TuneResult:
    """The chosen setting, its dev score, the raw dev score and the whole grid (one dict per setting)."""

    beta: float
    gamma: float
    n_components: int | None
    dev_spearman: float
    raw_dev_spearman: float
    gain_lower_bound: float
    whitening: Whitening
    grid: list[dict[str, float | int | None]] = field(default_factory=list)

    @property
    def is_raw(self) -> bool:
        return self.beta == 0 and self.gamma == 0 and self.n_components is None

    def describe(self) -> str:
        k = "full" if self.n_components is None else self.n_components
        return f"beta={self.beta:g}, gamma={self.gamma:g}, k={k}"


def tune_whitening(
    fit: np.ndarray | WhiteningStats,
    dev_a: np.ndarray,
    dev_b: np.ndarray,
    dev_scores: np.ndarray,
    *,
    betas: tuple[float, ...] = DEFAULT_BETAS,
    gammas: tuple[float, ...] = DEFAULT_GAMMAS,
    ks: tuple[int | None, ...] = DEFAULT_KS,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    eps: float = DEFAULT_EPS,
    seed: int = 0,
) -> TuneResult:
    """Tune (β, γ, k) on dev pairs: `fit` vectors (or their stats) define μ/Σ; `dev_a[i]`, `dev_b[i]` are the
    vectors of pair i with gold `dev_scores[i]`. `n_bootstrap=0` gives a plain argmax (not recommended)."""
    stats = fit if isinstance(fit, WhiteningStats) else WhiteningStats().update(fit)
    d = stats.n_features
    dev_a = as_vectors(dev_a, d, "dev_a")
    dev_b = as_vectors(dev_b, d, "dev_b")
    gold = np.asarray(dev_scores, dtype=np.float64)
    if not (len(dev_a) == len(dev_b) == len(gold)) or len(gold) < 3:
        raise InvalidInputError("dev_a, dev_b and dev_scores must have the same length (at least 3 pairs).")
    check_param(
        "n_bootstrap",
        "tune_whitening",
        isinstance(n_bootstrap, int) and n_bootstrap >= 0,
        "an int >= 0",
        n_bootstrap,
    )
    check_param("confidence", "tune_whitening", 0.5 <= confidence < 1, "a float in [0.5, 1)", confidence)
    assert d is not None
    k_values = sorted({d if k is None else int(k) for k in ks if k is None or 1 <= int(k) <= d}, reverse=True)

    raw_cos = paired_cosine(dev_a, dev_b)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(gold), size=(n_bootstrap, len(gold))) if n_bootstrap else None
    gold_boot = gold[samples] if samples is not None else None
    raw_boot = rowwise_spearman(raw_cos[samples], gold_boot) if samples is not None else None

    raw_score = spearman(raw_cos, gold)
    grid: list[dict[str, float | int | None]] = []
    for beta in betas:
        spectrum = Spectrum.from_stats(stats, float(beta))
        a_c, b_c = dev_a - spectrum.shift, dev_b - spectrum.shift
        for gamma in gammas:
            for k in k_values:
                if beta == 0 and gamma == 0 and k == d:
                    cos = raw_cos  # the raw-equivalent rotation: cosines are exactly the raw ones
                else:
                    kernel = spectrum.kernel(float(gamma), k, eps)
                    cos = paired_cosine(a_c @ kernel, b_c @ kernel)
                score = spearman(cos, gold)
                row: dict[str, float | int | None] = {
                    "beta": float(beta),
                    "gamma": float(gamma),
                    "n_components": None if k == d else k,
                    "dev_spearman": score,
                    "gain": score - raw_score,
                }
                if samples is not None:
                    gains = rowwise_spearman(cos[samples], gold_boot) - raw_boot
                    row["gain_lower_bound"] = float(np.quantile(gains, 1.0 - confidence))
                else:
                    row["gain_lower_bound"] = score - raw_score
                grid.append(row)

    def is_raw(r: dict) -> bool:
        return r["beta"] == 0 and r["gamma"] == 0 and r["n_components"] is None

    key = "gain_lower_bound" if n_bootstrap else "dev_spearman"
    candidates = [r for r in grid if not is_raw(r) and r["gain_lower_bound"] > 0]
    best = max(candidates, key=lambda r: r[key]) if candidates else None
    if best is None:
        chosen = {
            "beta": 0.0,
            "gamma": 0.0,
            "n_components": None,
            "dev_spearman": raw_score,
            "gain_lower_bound": 0.0,
        }
    else:
        chosen = best
    whitening = Whitening(chosen["n_components"], beta=chosen["beta"], gamma=chosen["gamma"], eps=eps).fit_stats(stats)
    result = TuneResult(
        beta=float(chosen["beta"]),
        gamma=float(chosen["gamma"]),
        n_components=chosen["n_components"],
        dev_spearman=float(chosen["dev_spearman"]),
        raw_dev_spearman=raw_score,
        gain_lower_bound=float(chosen["gain_lower_bound"]),
        whitening=whitening,
        grid=grid,
    )
    logger.info("tune_whitening chose %s (dev %.4f vs raw %.4f)", result.describe(), result.dev_spearman, raw_score)
    return result
