"""CUR search with a cross-encoder under a fixed budget of CE calls (kexue.fm 9336).

Implements ANNCUR (Yadav et al., EMNLP 2022): offline, score k_q anchor queries against every item,
R_anc (k_q × |I|); pick k_i anchor items; item embeddings E = pinv(A) · R_anc with A = R_anc[:, anchors]. Online,
score the query against the anchors (k_i calls), approximate ŝ = c_q · E, re-rank the top k_r by the exact CE
(k_r calls): budget B = k_i + k_r. And adaptive multi-round search as adaCUR (Yadav et al., Findings of EMNLP 2023):
the budget is split into rounds; each round adds the current top unscored items to the anchor set, scores them and
recomputes ŝ = c_q[S] · pinv(R_anc[:, S]) · R_anc. Every exactly scored item is eligible for the final top-k.
The first round may start from a first stage instead of (or mixed with) the fitted anchors — the bi-encoder's top
items, as the AXN paper (Yadav et al., ICLR 2024) runs its adaCUR_X baselines with X ∈ {DE, tf-idf}; AXN itself,
which shares the round loop :func:`adaptive_rounds`, lives in `semspace.interact.axn`.
The pseudo-inverse is regularised (relative `rcond` truncation and/or `ridge`), since pinv is ill-conditioned near
k_q = k_i.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from semspace._deps import require
from semspace._io import atomic_write_npz, read_artifact_json, read_artifact_npz, write_artifact_json
from semspace.errors import ArtifactError, InvalidInputError, NotFittedError, check_param

# Relative truncation of the pseudo-inverse, shared by CURIndex, CURSearcher and `semspace cur build`: 1e-3 is the
# value behind the committed results (benchmarks/cur_experiment.py, docs/results/cur.md), where it removes the
# error spike at k_q = k_i that plain pinv (rcond 1e-12) shows.
DEFAULT_RCOND = 1e-3
_FORMAT = "semspace.cur"

ItemScorer = Callable[[np.ndarray], np.ndarray]  # item indices → exact CE scores for one query (one call per item)


def regularized_pinv(A: np.ndarray, rcond: float = DEFAULT_RCOND, ridge: float = 0.0) -> np.ndarray:
    """Pseudo-inverse of A by SVD: singular values below rcond·s_max dropped; with ridge λ > 0 each kept s becomes
    s / (s² + λ) (Tikhonov), which tames the error spike when A is square and ill-conditioned."""
    U, s, Vt = np.linalg.svd(np.asarray(A, dtype=np.float64), full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((A.shape[1], A.shape[0]))
    keep = s > rcond * s[0]
    inv = np.zeros_like(s)
    inv[keep] = s[keep] / (s[keep] ** 2 + ridge) if ridge > 0 else 1.0 / s[keep]
    return (Vt.T * inv) @ U.T


@dataclass
class CURSearchResult:
    """Top-k item indices with exact CE scores, the approximate scores of the last round, and CE calls spent."""

    ids: np.ndarray
    exact_scores: np.ndarray
    approx_scores: np.ndarray
    calls: int
    scored: np.ndarray  # every item index scored exactly, in call order


class CURIndex:
    """Cross-encoder k-NN index by CUR decomposition. Fit with :meth:`fit_matrix` (R_anc given) or :meth:`fit`."""

    def __init__(
        self,
        n_anchor_items: int = 50,
        anchor_items: str = "random",
        rcond: float = DEFAULT_RCOND,
        ridge: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.n_anchor_items = n_anchor_items
        self.anchor_items = anchor_items
        self.rcond = rcond
        self.ridge = ridge
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------------------------------
    def fit_matrix(self, anchor_scores: np.ndarray, item_vectors: np.ndarray | None = None) -> CURIndex:
        """Fit from R_anc (k_q × |I|) = exact CE scores of the anchor queries against all items."""
        R = np.asarray(anchor_scores, dtype=np.float64)
        if R.ndim != 2 or R.shape[0] == 0 or R.shape[1] == 0:
            raise InvalidInputError("anchor_scores must be a non-empty (n_anchor_queries, n_items) matrix.")
        if not np.isfinite(R).all():
            raise InvalidInputError("anchor_scores contain NaN or inf.")
        n_items = R.shape[1]
        k_i = self.n_anchor_items
        check_param(
            "n_anchor_items", "CURIndex", isinstance(k_i, int) and 1 <= k_i <= n_items, f"an int in [1, {n_items}]", k_i
        )
        check_param(
            "anchor_items",
            "CURIndex",
            self.anchor_items in ("random", "kmeans"),
            "'random' or 'kmeans'",
            self.anchor_items,
        )
        rng = np.random.default_rng(self.seed)
        if self.anchor_items == "random":
            anchors = np.sort(rng.choice(n_items, size=k_i, replace=False))
        else:
            if item_vectors is None or len(item_vectors) != n_items:
                raise InvalidInputError("anchor_items='kmeans' needs item_vectors, one row per item.")
            anchors = kmeans_anchor_items(np.asarray(item_vectors, dtype=np.float64), k_i, self.seed)
        self.anchor_scores_ = R
        self.anchor_item_ids_ = anchors
        self.item_embeddings_ = regularized_pinv(R[:, anchors], self.rcond, self.ridge) @ R
        self.n_items_ = n_items
        self.offline_calls_ = R.size
        return self

    def fit(
        self,
        anchor_queries: list[str],
        items: list[str],
        scorer: object,
        item_vectors: np.ndarray | None = None,
        show_progress_bar: bool | None = None,
    ) -> CURIndex:
        """Score every anchor query against every item with `scorer.predict(pairs)` (a CrossEncoder: k_q·|I|
        calls), then fit as :meth:`fit_matrix`. `item_vectors` (bi-encoder) are needed for k-means anchors.

        The progress bar counts the cross-encoder calls as they are made (None: on a terminal only); the scorer's
        own bar, if it has one, is turned off so there is one bar."""
        if not anchor_queries or not items:
            raise InvalidInputError("fit needs at least one anchor query and one item.")
        predict = scorer.predict  # type: ignore[attr-defined]
        quiet = {"show_progress_bar": False} if "show_progress_bar" in inspect.signature(predict).parameters else {}
        disable = None if show_progress_bar is None else not show_progress_bar
        rows = []
        with tqdm(
            total=len(anchor_queries) * len(items), desc="Cross-encoding anchor queries", unit="pair", disable=disable
        ) as bar:
            for query in anchor_queries:
                rows.append(np.asarray(predict([(query, item) for item in items], **quiet), dtype=np.float64))
                bar.update(len(items))
        return self.fit_matrix(np.vstack(rows), item_vectors)

    def _check(self) -> None:
        if not hasattr(self, "item_embeddings_"):
            raise NotFittedError("CURIndex is not fitted; call fit() or fit_matrix() first.")

    def approximate(self, anchor_query_scores: np.ndarray) -> np.ndarray:
        """ŝ = c_q · E for the query's exact scores against the anchor items."""
        self._check()
        return np.asarray(anchor_query_scores, dtype=np.float64) @ self.item_embeddings_

    # -- search ----------------------------------------------------------------------------------------------
    def search(
        self,
        score_items: ItemScorer,
        k: int,
        budget: int,
        rounds: int = 1,
        first_stage: np.ndarray | None = None,
        n_first_stage: int | None = None,
    ) -> CURSearchResult:
        """Top-k items for one query spending at most `budget` CE calls through `score_items`.

        rounds=1: ANNCUR (k_i anchors + top (budget − k_i) by ŝ re-ranked). rounds ≥ 2: adaptive — after the
        anchors, the remaining budget is split over rounds − 1 rounds; each adds the current top unscored items
        to the anchor set and recomputes ŝ from all scored items.

        `first_stage` (one score per item for this query, e.g. the bi-encoder's cosine or BM25) makes the first
        round start from it instead of the fitted anchors only (adaCUR_DE of the AXN paper, ICLR 2024): the first round
        still has k_i = n_anchor_items items — the `n_first_stage` best items by `first_stage` (default: all k_i),
        then the fitted anchors (random / k-means) not among them, then further first-stage items if duplicates
        left room. ŝ is then c_q[S] · pinv(R_anc[:, S]) · R_anc for that per-query S. Without `first_stage` the
        search is exactly as before.
        """
        self._check()
        k_i, n = len(self.anchor_item_ids_), self.n_items_
        check_param("k", "CURIndex.search", isinstance(k, int) and 1 <= k <= n, f"an int in [1, {n}]", k)
        check_param(
            "budget",
            "CURIndex.search",
            isinstance(budget, int) and k_i <= budget,
            f"an int >= n_anchor_items ({k_i})",
            budget,
        )
        check_param("rounds", "CURIndex.search", isinstance(rounds, int) and rounds >= 1, "an int >= 1", rounds)
        if first_stage is None:
            check_param(
                "n_first_stage", "CURIndex.search", n_first_stage is None, "None without first_stage", n_first_stage
            )
            first = self.anchor_item_ids_
        else:
            first = first_round_items(
                k_i,
                check_first_stage(first_stage, n, "CURIndex.search"),
                n_first_stage,
                self.anchor_item_ids_,
                "CURIndex.search",
            )
        R, anchors_first = self.anchor_scores_, first_stage is None

        def approximate(columns: np.ndarray, exact: np.ndarray) -> np.ndarray:
            if anchors_first and columns.size == k_i:  # the fitted anchors: E is precomputed
                return self.approximate(exact)
            return (exact @ regularized_pinv(R[:, columns], self.rcond, self.ridge)) @ R

        steps = 1 if rounds == 1 else rounds - 1
        return adaptive_rounds(score_items, first, approximate, n, min(budget, n), k, steps, recompute=rounds > 1)

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """`path/cur.npz` (R_anc, anchors, E) + `path/cur.json` (params under the artifact header)."""
        self._check()
        folder = Path(path)
        atomic_write_npz(
            folder / "cur.npz",
            anchor_scores=self.anchor_scores_,
            anchor_item_ids=self.anchor_item_ids_,
            item_embeddings=self.item_embeddings_,
        )
        params = {
            "n_anchor_items": self.n_anchor_items,
            "anchor_items": self.anchor_items,
            "rcond": self.rcond,
            "ridge": self.ridge,
            "seed": self.seed,
        }
        write_artifact_json(folder / "cur.json", _FORMAT, {"params": params})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> CURIndex:
        """Load what `save` wrote (format and format version checked)."""
        folder = Path(path)
        config = read_artifact_json(folder / "cur.json", _FORMAT)
        arrays = read_artifact_npz(
            folder / "cur.npz", ("anchor_scores", "anchor_item_ids", "item_embeddings"), "CURIndex"
        )
        R, anchors, E = arrays["anchor_scores"], arrays["anchor_item_ids"], arrays["item_embeddings"]
        if E.shape != (len(anchors), R.shape[1]):
            raise ArtifactError(f"{folder}: not a consistent CURIndex artifact")
        index = cls(**config["params"])
        index.anchor_scores_, index.anchor_item_ids_, index.item_embeddings_ = R, anchors, E
        index.n_items_, index.offline_calls_ = R.shape[1], R.size
        return index


def _call(score_items: ItemScorer, items: np.ndarray) -> np.ndarray:
    scores = np.asarray(score_items(np.asarray(items)), dtype=np.float64)
    if scores.shape != (len(items),):
        raise InvalidInputError(f"the scorer returned shape {scores.shape} for {len(items)} items")
    return scores


def check_first_stage(first_stage: np.ndarray, n_items: int, owner: str) -> np.ndarray:
    """First-stage scores as float64, one finite score per item."""
    scores = np.asarray(first_stage, dtype=np.float64)
    if scores.shape != (n_items,):
        raise InvalidInputError(
            f"{owner}: first_stage must have one score per item, shape ({n_items},); got {scores.shape}"
        )
    if not np.isfinite(scores).all():
        raise InvalidInputError(f"{owner}: first_stage contains NaN or inf.")
    return scores


def first_round_items(
    size: int, first_stage: np.ndarray, n_first_stage: int | None, fallback: np.ndarray, owner: str
) -> np.ndarray:
    """`size` distinct items: the `n_first_stage` (default `size`) best by `first_stage`, then `fallback` items not
    among them, then further first-stage items in order while there is room."""
    n_first = size if n_first_stage is None else n_first_stage
    check_param(
        "n_first_stage", owner, isinstance(n_first, int) and 0 <= n_first <= size, f"an int in [0, {size}]", n_first
    )
    top = np.argsort(-first_stage, kind="stable")
    order = np.concatenate([top[:n_first], np.asarray(fallback, dtype=np.int64), top[n_first:]])
    _, where = np.unique(order, return_index=True)
    return order[np.sort(where)][:size]


def adaptive_rounds(
    score_items: ItemScorer,
    first: np.ndarray,
    approximate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    n_items: int,
    budget: int,
    k: int,
    steps: int,
    recompute: bool,
) -> CURSearchResult:
    """The round loop shared by CUR, adaCUR and AXN. Score `first` exactly, ŝ = approximate(scored, exact); then
    `steps` times score the current top unscored items by ŝ (the budget left after `first` split evenly, the last
    step taking the rest) and, if `recompute`, refresh ŝ from every scored item. Each item is scored at most once,
    so exactly min(budget, n_items) CE calls are made when budget ≥ len(first). The top-k is taken over every
    exactly scored item."""
    scored = [int(i) for i in first]
    exact = list(_call(score_items, np.asarray(scored, dtype=np.int64)))
    approx = approximate(np.asarray(scored), np.asarray(exact))
    remaining = budget - len(scored)
    for step in range(steps):
        if remaining <= 0:
            break
        take = remaining if step == steps - 1 else max(1, remaining // (steps - step))
        seen = np.zeros(n_items, dtype=bool)
        seen[scored] = True
        candidates = np.argsort(-np.where(seen, -np.inf, approx), kind="stable")[:take]
        candidates = candidates[~seen[candidates]]
        if candidates.size == 0:
            break
        scored += candidates.tolist()
        exact += list(_call(score_items, candidates))
        remaining -= candidates.size
        if recompute:
            approx = approximate(np.asarray(scored), np.asarray(exact))
    scored_arr, exact_arr = np.asarray(scored, dtype=np.int64), np.asarray(exact, dtype=np.float64)
    top = np.argsort(-exact_arr, kind="stable")[:k]
    return CURSearchResult(scored_arr[top], exact_arr[top], approx, len(scored_arr), scored_arr)


def kmeans_anchor_items(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """The item nearest to each k-means centre of (bi-encoder) item vectors (distinct items, sorted)."""
    from sklearn.cluster import KMeans

    normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centres = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(normed).cluster_centers_
    chosen: list[int] = []
    taken = np.zeros(len(vectors), dtype=bool)
    for centre in centres:
        sims = np.where(taken, -np.inf, normed @ centre)
        best = int(np.argmax(sims))
        taken[best] = True
        chosen.append(best)
    return np.sort(np.asarray(chosen))


def retrieve_and_rerank(first_stage: np.ndarray, score_items: ItemScorer, k: int, budget: int) -> CURSearchResult:
    """Baseline: the `budget` best items by a first-stage score (dual encoder, BM25) re-ranked by the exact CE."""
    n = len(first_stage)
    check_param("k", "retrieve_and_rerank", isinstance(k, int) and 1 <= k <= n, f"an int in [1, {n}]", k)
    check_param("budget", "retrieve_and_rerank", isinstance(budget, int) and budget >= k, f"an int >= k ({k})", budget)
    candidates = np.argsort(-np.asarray(first_stage), kind="stable")[: min(budget, n)]
    exact = _call(score_items, candidates)
    top = np.argsort(-exact, kind="stable")[:k]
    return CURSearchResult(
        candidates[top], exact[top], np.asarray(first_stage, dtype=np.float64), len(candidates), candidates
    )


class BM25FirstStage:
    """BM25 scores of every item for a query (the `bm25s` package): the first stage of the RnR-BM25 baseline."""

    def __init__(self, items: list[str], stopwords: str | None = "en") -> None:
        bm25s = require("bm25s", "bm25s", "The BM25 first stage")
        self._bm25s, self._stopwords, self.n_items = bm25s, stopwords, len(items)
        self._retriever = bm25s.BM25()
        self._retriever.index(bm25s.tokenize(items, stopwords=stopwords, show_progress=False), show_progress=False)

    def __call__(self, query: str) -> np.ndarray:
        tokens = self._bm25s.tokenize([query], stopwords=self._stopwords, return_ids=False, show_progress=False)[0]
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float64) if tokens else np.zeros(self.n_items)
