"""STS evaluation: Spearman×100 of cosine vs gold for raw, whitened, whitened-k and tuned vectors (BERT-whitening,
arXiv 2103.15316).

For each task and pooling: transforms are fitted on a fit set — "target" (all sentences of the task, labels
unused, as in the BERT-whitening paper) or "train" (the train split, else the valid split) — and the tuned setting
selects (β, γ, k) on the dev split only; every reported number is on test. STS12-16 report "wmean" (subset
Spearmans weighted by subset size, the whitening paper) and "all" (one Spearman over the concatenation, SimCSE).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from semspace.data.sts import STSPairs
from semspace.data.tasks import STSTask
from semspace.metrics import spearman
from semspace.transform import WhiteningStats, paired_cosine, tune_whitening
from semspace.transform.spectrum import Spectrum
from semspace.transform.tune import DEFAULT_RULE

logger = logging.getLogger(__name__)

CURVE_KS = (8, 16, 32, 48, 64, 96, 128, 192, 256, 320, 384, 512, 768)


@dataclass
class Vectors:
    """Sentence → row lookup into one matrix of vectors."""

    matrix: np.ndarray
    index: dict[str, int]

    def pairs(self, pairs: STSPairs) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.matrix[[self.index[s] for s in pairs.sentences1]],
            self.matrix[[self.index[s] for s in pairs.sentences2]],
        )

    def of(self, sentences: Sequence[str]) -> np.ndarray:
        return self.matrix[[self.index[s] for s in dict.fromkeys(sentences)]]


def task_sentences(task: STSTask) -> list[str]:
    """Every sentence an evaluation of `task` needs (target, dev, fit, test), unique, order kept."""
    parts = [task.target_sentences(), task.dev.sentences()]
    if task.fit is not None:
        parts.append(task.fit.sentences())
    return list(dict.fromkeys(s for part in parts for s in part))


def score_test(task: STSTask, cos_of: Callable[[STSPairs], np.ndarray]) -> dict[str, float]:
    """Spearman×100 on test: 'wmean' over subsets weighted by size and 'all' over their concatenation."""
    cosines, golds, rhos, sizes = [], [], [], []
    for subset in task.test.values():
        cos = cos_of(subset)
        cosines.append(cos)
        golds.append(subset.scores)
        rhos.append(spearman(cos, subset.scores))
        sizes.append(len(subset))
    wmean = float(np.average(rhos, weights=sizes))
    everything = spearman(np.concatenate(cosines), np.concatenate(golds))
    return {"wmean": 100 * wmean, "all": 100 * everything}


def evaluate_task(
    task: STSTask,
    vectors: Vectors,
    *,
    ks: Sequence[int] = (256, 128, 64),
    curve_ks: Sequence[int] = CURVE_KS,
    tune: bool = True,
    tune_rule: str = DEFAULT_RULE,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> list[dict]:
    """All rows for one task and one set of vectors: raw, whitening (full and per k) and tuned, per fit set.

    `tune_rule` names the :func:`~semspace.transform.tune_whitening` rule of the "tuned" rows; the "argmax" rows are
    the plain dev argmax over the full grid, for comparison."""
    rows: list[dict] = []
    test_pairs = {name: vectors.pairs(p) for name, p in task.test.items()}
    d = vectors.matrix.shape[1]

    def cos_with(transform: Callable[[np.ndarray], np.ndarray] | None) -> Callable[[STSPairs], np.ndarray]:
        def cos_of(pairs: STSPairs) -> np.ndarray:
            a, b = test_pairs[pairs.name] if pairs.name in test_pairs else vectors.pairs(pairs)
            return paired_cosine(a, b) if transform is None else paired_cosine(transform(a), transform(b))

        return cos_of

    def add(transform: str, fit: str, k: int | None, beta: float | None, gamma: float | None, scores: dict) -> None:
        rows.append(_row(task, transform, fit, k, beta, gamma, scores))

    add("raw", "-", None, None, None, score_test(task, cos_with(None)))

    fit_sets = {"target": task.target_sentences()}
    if task.fit is not None:
        fit_sets[task.fit_source] = task.fit.sentences()
    dev_a, dev_b = vectors.pairs(task.dev)
    for fit_name, sentences in fit_sets.items():
        fit_vectors = vectors.of(sentences)
        stats = WhiteningStats().update(fit_vectors)
        # One eigendecomposition serves every k: the k-column kernel is the first k columns of the full one.
        spectrum = Spectrum.from_stats(stats, beta=1.0)
        mean, kernel = spectrum.shift, spectrum.kernel(gamma=1.0)
        for k in sorted({d, *[k for k in ks if k < d], *[k for k in curve_ks if k < d]}, reverse=True):

            def project(x: np.ndarray, k: int = k, mean: np.ndarray = mean, kernel: np.ndarray = kernel) -> np.ndarray:
                return (x - mean) @ kernel[:, :k]

            name = "whitening" if k == d else f"whitening-{k}"
            in_table = k == d or k in ks
            add(name if in_table else f"curve-{k}", fit_name, k, 1.0, 1.0, score_test(task, cos_with(project)))
        if tune:
            rows.extend(_tuned_rows(task, fit_name, stats, (dev_a, dev_b), cos_with, d, tune_rule, n_bootstrap, seed))
    return rows


def _row(
    task: STSTask, transform: str, fit: str, k: int | None, beta: float | None, gamma: float | None, scores: dict
) -> dict:
    """One result row: the task, the transform and its settings, then the scores."""
    return {"task": task.name, "transform": transform, "fit": fit, "k": k, "beta": beta, "gamma": gamma, **scores}


def _tuned_rows(
    task: STSTask,
    fit_name: str,
    stats: WhiteningStats,
    dev: tuple[np.ndarray, np.ndarray],
    cos_with: Callable[[Callable[[np.ndarray], np.ndarray]], Callable[[STSPairs], np.ndarray]],
    d: int,
    rule: str,
    n_bootstrap: int,
    seed: int,
) -> list[dict]:
    """The "tuned" row ((β, γ, k) chosen on dev by `rule`) and the "argmax" row of one fit set."""
    dev_a, dev_b = dev
    result = tune_whitening(stats, dev_a, dev_b, task.dev.scores, rule=rule, n_bootstrap=n_bootstrap, seed=seed)
    tuned = _row(
        task,
        "tuned",
        fit_name,
        result.n_components or d,
        result.beta,
        result.gamma,
        {
            **score_test(task, cos_with(result.transform)),
            "dev_gain": 100 * (result.dev_spearman - result.raw_dev_spearman),
            "dev_gain_lower_bound": 100 * result.gain_lower_bound,
        },
    )
    # The plain dev argmax, for comparison with the robust rule (never reported as "tuned").
    plain = tune_whitening(stats, dev_a, dev_b, task.dev.scores, rule="argmax", seed=seed)
    argmax = _row(
        task,
        "argmax",
        fit_name,
        plain.n_components or d,
        plain.beta,
        plain.gamma,
        {
            **score_test(task, cos_with(plain.transform)),
            "dev_gain": 100 * (plain.dev_spearman - plain.raw_dev_spearman),
        },
    )
    return [tuned, argmax]
