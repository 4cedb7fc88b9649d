"""Whitening folded into a static model's token table: whitened vectors at the raw model's speed.

A static model (:mod:`semspace.encode.static`) makes the sentence vector y = (1/n) Σᵢ E[tᵢ], the mean of its token
rows. The generalised BERT-whitening z = (y − βμ)·K (Su et al. 2021, arXiv 2103.15316; β, γ, k: kexue.fm 9079) is
affine, and a mean's weights sum to one, so for every n ≥ 1

    z = (1/n) Σᵢ (E[tᵢ] − βμ)·K,

i.e. the table E' = (E − βμ)·K gives the whitened vector exactly. model2vec's format has no bias term; none is
needed: the bias −βμK is spread over the tokens, which is exact for a plain mean and is what both model2vec and
sentence-transformers' ``StaticEmbedding`` (an ``EmbeddingBag`` in mean mode) compute. Where it is not exact, and
what is done about it:

- a text with no known token: both peers give the zero vector, not −βμK (the whitened zero); as raw, it is
  meaningless either way;
- the whitening is fitted on the *un-normalised* means (the model's normalize off): a normalisation before the
  whitening is not linear and could not be folded. The saved model's own normalisation comes after the whitening,
  which is what cosine similarity does anyway (exact);
- model2vec's vocabulary quantization (a token → row mapping with per-token weights) is a weighted mean whose
  weights need not sum to one: refused.

:func:`whiten_static` tunes (β, γ, k) with :func:`~semspace.transform.tune.tune_whitening` (dev pairs, never below
raw on dev) and folds the choice; a kept raw returns the model unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from semspace.encode.static import INFO_KEY, mean_vectors, replace_table
from semspace.errors import InvalidInputError, InvalidParameterError, NotFittedError
from semspace.transform.stats import WhiteningStats
from semspace.transform.tune import TuneResult, tune_whitening
from semspace.transform.whitening import Whitening

if TYPE_CHECKING:
    from model2vec import StaticModel

logger = logging.getLogger(__name__)


def fold_whitening(model: StaticModel, whitening: Whitening) -> StaticModel:
    """A new static model whose table is (E − β·μ)·K: its mean-pooled vectors are `whitening`'s transform of
    `model`'s un-normalised mean-pooled vectors (float32 round-off apart). `model` is not changed."""
    if not hasattr(whitening, "kernel_"):
        raise NotFittedError("fold_whitening needs a fitted Whitening.")
    if model.token_mapping is not None or model.weights is not None:
        raise InvalidParameterError(
            "fold_whitening needs a plain token table; this model has model2vec's vocabulary quantization (a token "
            "mapping and per-token weights), where the folded bias would not be exact."
        )
    table = np.asarray(model.embedding)
    if table.shape[1] != whitening.n_features_in_:
        raise InvalidInputError(
            f"The whitening was fitted on {whitening.n_features_in_}-d vectors; the table is {table.shape[1]}-d."
        )
    # float64 for the product (statistics in float64), float32 for the table (vectors in float32)
    folded = (table.astype(np.float64) - whitening.shift_) @ whitening.kernel_
    setting = {
        "beta": float(whitening.beta),
        "gamma": float(whitening.gamma),
        "n_components": whitening.n_components,
        "fit_samples": int(whitening.n_samples_seen_),
        "folded": "table rows (E - beta*mu) @ K: exact for the mean over >= 1 token",
    }
    return replace_table(model, folded.astype(np.float32), whitening=setting)


def whiten_static(
    model: StaticModel,
    fit_texts: Sequence[str],
    dev_a: Sequence[str],
    dev_b: Sequence[str],
    dev_scores: Sequence[float] | np.ndarray,
    *,
    dev_groups: Sequence[Any] | np.ndarray | None = None,
    rule: str = "cv",
    **tune_kwargs: Any,
) -> tuple[StaticModel, TuneResult]:
    """(the model with the tuned whitening folded in, the tuning result).

    μ and Σ come from the un-normalised vectors of `fit_texts` (no labels needed); (β, γ, k) are chosen on the dev
    pairs (`dev_a[i]`, `dev_b[i]`, gold `dev_scores[i]`; `dev_groups` as in tune_whitening) by `rule` — never below
    raw on dev. When the rule keeps raw the model is returned unchanged (no rotation is folded)."""
    if len(fit_texts) < 2:
        raise InvalidInputError("whiten_static needs at least 2 fit texts.")
    stats = WhiteningStats().update(mean_vectors(model, fit_texts))
    vec_a, vec_b = mean_vectors(model, dev_a), mean_vectors(model, dev_b)
    gold = np.asarray(dev_scores)
    result = tune_whitening(stats, vec_a, vec_b, gold, rule=rule, dev_groups=dev_groups, **tune_kwargs)
    if result.whitening is None:
        logger.info("whiten_static kept the raw model (%s)", result.describe())
        return model, result
    folded = fold_whitening(model, result.whitening)
    folded.config[INFO_KEY]["whitening"].update(
        {
            "rule": result.rule,
            "group_guard": result.group_guard,
            "dev_spearman": result.dev_spearman,
            "raw_dev_spearman": result.raw_dev_spearman,
        }
    )
    return folded, result
