"""Every score semspace reports, in one base module (numpy/scipy only; any layer may import it).

- Rank correlation: :func:`spearman` (SentEval / SimCSE STS protocol) and :func:`rowwise_spearman` (the same for many
  bootstrap resamples at once).
- Retrieval over ranked id lists, as BEIR / pytrec_eval compute them: :func:`ndcg_at_k` (graded gains, log2
  discount), :func:`recall_at_k`, :func:`mrr_at_k`, averaged over queries by :func:`retrieval_scores`.
- Approximate vs exact search: :func:`recall_vs_exact`, the fraction of the exact top-k that an approximate search
  (FAISS index, CUR cross-encoder search) returned — FAISS's k-recall@k (`contrib/evaluation.py`), ANNCUR's
  Top-k-Recall (Yadav et al., EMNLP 2022) — with :func:`exact_top_k` to rank exact scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semspace.errors import InvalidInputError, check_param


# -- the similarity STS scores rank ------------------------------------------------------------------------------
def paired_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_i) for each row, float64; a zero row gives cosine 0 rather than NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InvalidInputError(f"paired_cosine needs two (n, d) arrays of one shape; got {a.shape} and {b.shape}.")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("ij,ij->i", a, b) / np.maximum(norms, 1e-300)


# -- rank correlation ----------------------------------------------------------------------------------------------
def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman ρ (ties averaged, as scipy); NaN-free for constant input (returns 0)."""
    from scipy.stats import spearmanr

    if len(x) < 2:
        raise InvalidInputError("Spearman correlation needs at least 2 pairs.")
    rho = spearmanr(x, y).statistic
    return 0.0 if not np.isfinite(rho) else float(rho)


def rowwise_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of x (B, n) with the matching row of y (B, n); 0 for a constant row."""
    return rank_correlation(centred_ranks(x), centred_ranks(y))


def centred_ranks(x: np.ndarray) -> np.ndarray:
    """Row-wise ranks of x (B, n), ties averaged, each row centred (rank once, correlate with many)."""
    from scipy.stats import rankdata

    ranks = rankdata(x, axis=1)
    return ranks - ranks.mean(axis=1, keepdims=True)


def rank_correlation(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Row-wise Pearson of centred ranks from :func:`centred_ranks` (= Spearman ρ); 0 for a constant row."""
    denom = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    return np.where(denom > 0, (rx * ry).sum(axis=1) / np.maximum(denom, 1e-300), 0.0)


# -- retrieval over ranked id lists --------------------------------------------------------------------------------
def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains and a log2(rank + 1) discount (BEIR, pytrec_eval); 0 when nothing is relevant."""
    gains = [relevant.get(doc, 0) for doc in ranked[:k]]
    dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """Fraction of the relevant documents (gain > 0) among the first k ranked; 0 when nothing is relevant."""
    hits = sum(1 for doc in ranked[:k] if relevant.get(doc, 0) > 0)
    total = sum(1 for g in relevant.values() if g > 0)
    return hits / total if total else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the first k, else 0."""
    return next((1.0 / (i + 1) for i, doc in enumerate(ranked[:k]) if relevant.get(doc, 0) > 0), 0.0)


def retrieval_scores(rankings: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, recall@10, recall@100 and MRR@10 (×100) over the queries in qrels (a query without a
    ranking counts as an empty ranking)."""
    names = {
        "nDCG@10": lambda r, q: ndcg_at_k(r, q, 10),
        "recall@10": lambda r, q: recall_at_k(r, q, 10),
        "recall@100": lambda r, q: recall_at_k(r, q, 100),
        "MRR@10": lambda r, q: mrr_at_k(r, q, 10),
    }
    return {
        name: 100 * float(np.mean([fn(rankings.get(q, []), rel) for q, rel in qrels.items()]))
        for name, fn in names.items()
    }


# -- approximate vs exact top-k ------------------------------------------------------------------------------------
def exact_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores of each row (1-D: one query), best first; ties go to the lower index
    (a stable sort, as FAISS's exact search)."""
    scores = np.asarray(scores)
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def recall_vs_exact(found_ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    """Recall of the exact top-k: |found[:k] ∩ exact[:k]| / k, averaged over queries (rows; a 1-D pair is one query).

    FAISS's k-recall@k for an ANN index and ANNCUR's Top-k-Recall for CUR search. Ties: `exact_ids` is one exact
    ranking (e.g. :func:`exact_top_k`, ties to the lower index); an item whose exact score ties the k-th one but
    that this ranking left out counts as a miss, so with ties at the k-th score the value can be below 1 for a
    search that is in fact exact. Entries of `found_ids` past its end (fewer than k found) or equal to −1 (FAISS
    padding) are misses; the denominator is always k.
    """
    check_param("k", "recall_vs_exact", isinstance(k, int | np.integer) and k >= 1, "an int >= 1", k)
    found, exact = np.asarray(found_ids), np.asarray(exact_ids)
    if found.ndim != exact.ndim or found.ndim not in (1, 2) or (found.ndim == 2 and len(found) != len(exact)):
        raise InvalidInputError(
            f"recall_vs_exact needs two 1-D id lists or two 2-D arrays with one row per query; "
            f"got shapes {found.shape} and {exact.shape}."
        )
    if found.ndim == 1:
        found, exact = found[None, :], exact[None, :]
    hits = [len((set(f[:k].tolist()) & set(e[:k].tolist())) - {-1}) / k for f, e in zip(found, exact, strict=True)]
    return float(np.mean(hits)) if hits else 0.0
