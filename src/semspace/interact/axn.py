"""AXN: adaptive k-NN search with a cross-encoder over fixed item embeddings.

Implements the test-time search of Yadav, Monath, Zaheer, Fergus & McCallum, "Adaptive Retrieval and Scalable
Indexing for k-NN Search with Cross-Encoders", ICLR 2024 (arXiv 2405.03651), Algorithm 1 and Eqs. 4–7:

1. Item embeddings V (|I| × d) are fixed offline.
2. Round 1 scores B/R items with the CE: the top items of a first stage (dual encoder, BM25: Axn_{·,DE}) or,
   without one, a seeded uniform sample.
3. The test query's embedding is the least-squares solution of V_A u = a over the items A scored so far
   (u = pinv(V_A) a, the paper's (V_Aᵀ V_A)† V_Aᵀ a); with `mix` = λ > 0 it becomes (1 − λ) u + λ u_param (Eq. 7).
4. Each later round scores the B/R unscored items with the highest u · v_i, then re-solves u (Eq. 5); after R
   rounds the top-k by exact CE score among all B scored items is returned (Eq. 6).

Item embeddings: any fixed V — the dual encoder's item vectors (the paper's Axn_{DE_src,DE_src}), or
:func:`factorize_anchor_scores` of a dense anchor-query score matrix R_anc: its columns (V = R_ancᵀ; AXN in this
space with mix=0 computes exactly adaCUR's ŝ = a · pinv(R_anc[:, A]) · R_anc) or a rank-r truncated SVD (the
least-squares matrix factorisation of Eq. 3 when every entry of R_anc is observed).

Where this differs from the paper, and why:
- Eq. 7 is applied to scores, not embeddings: ŝ = (1 − λ)·V u_LinReg + λ·first_stage. When V holds the dual
  encoder's item vectors and `first_stage` = V · u_DE (its inner products) this is exactly Eq. 7; for other V (e.g.
  R_anc factors) there is no parametric query embedding in V's space, and mixing scores is the natural extension.
- The pseudo-inverse is the house's regularised one (relative `rcond` truncation, optional `ridge`), as in CURIndex;
  rcond=1e-12 gives the plain pinv of the paper.
- The paper's score normalisation s' = β(s − α) (its App. A.4: α, β match the CE's score distribution to the DE's on
  100 train queries; it does not say by which statistic) is estimated in :meth:`AXNIndex.fit` from optional paired
  CE / first-stage scores by matching mean and standard deviation; without them α = 0, β = 1. It never changes the
  ranking of exact scores.
  Eq. 4 has no intercept, so a shift α ≠ 0 changes the fit unless V can represent a constant score.
- Offline sparse matrix factorisation of a partially observed G (MF_Trns / MF_Ind, trained by SGD) is not
  implemented; only the dense-R_anc factorisation above and externally given V.
- Budget split: round 1 takes ⌊B/R⌋ items, the rest is split evenly over R − 1 rounds (the last takes what is
  left), so exactly B CE calls are made even when R does not divide B.
"""

from __future__ import annotations

import numpy as np

from semspace.errors import InvalidInputError, NotFittedError, check_param
from semspace.interact.cur import (
    DEFAULT_RCOND,
    CURSearchResult,
    ItemScorer,
    adaptive_rounds,
    check_first_stage,
    first_round_items,
    regularized_pinv,
)


def factorize_anchor_scores(anchor_scores: np.ndarray, rank: int | None = None) -> np.ndarray:
    """Item embeddings (|I| × d) from a dense anchor-query × item CE score matrix R_anc (k_q × |I|).

    rank=None: V = R_ancᵀ (each item is its column of anchor-query scores; d = k_q). rank=r: the item factor of the
    rank-r truncated SVD R_anc ≈ U_r S_r V_rᵀ, i.e. V_r S_r = R_ancᵀ U_r (d = r) — the least-squares rank-r matrix
    factorisation of R_anc (Eckart–Young), the fully observed case of AXN's Eq. 3.
    """
    R = np.asarray(anchor_scores, dtype=np.float64)
    if R.ndim != 2 or R.size == 0:
        raise InvalidInputError("anchor_scores must be a non-empty (n_anchor_queries, n_items) matrix.")
    if not np.isfinite(R).all():
        raise InvalidInputError("anchor_scores contain NaN or inf.")
    if rank is None:
        return R.T.copy()
    top = min(R.shape)
    check_param(
        "rank", "factorize_anchor_scores", isinstance(rank, int) and 1 <= rank <= top, f"an int in [1, {top}]", rank
    )
    _, s, Vt = np.linalg.svd(R, full_matrices=False)
    return Vt[:rank].T * s[:rank]


class AXNIndex:
    """Adaptive cross-encoder k-NN search (AXN, Yadav et al. ICLR 2024) over fixed item embeddings.

    `rounds` R (the paper: 5 on ZeShEL, 10 on BeIR), `mix` λ ∈ [0, 1] of Eq. 7 (needs `first_stage` at search
    time; the paper tunes it on dev and reports λ = 0.8 best for k = 1, λ = 0 for k = 100), `rcond` / `ridge` for
    the least-squares solve, `seed` for the uniform first round when no first stage is given.
    """

    def __init__(
        self, rounds: int = 5, mix: float = 0.0, rcond: float = DEFAULT_RCOND, ridge: float = 0.0, seed: int = 0
    ) -> None:
        self.rounds = rounds
        self.mix = mix
        self.rcond = rcond
        self.ridge = ridge
        self.seed = seed

    def fit(
        self,
        item_embeddings: np.ndarray,
        anchor_scores: np.ndarray | None = None,
        anchor_first_stage: np.ndarray | None = None,
    ) -> AXNIndex:
        """Store V (|I| × d). With `anchor_scores` (CE scores of some train query-item pairs) and
        `anchor_first_stage` (the first stage's scores of the same pairs, same shape), also estimate the score
        normalisation β(s − α) that maps the CE's score mean and spread onto the first stage's (paper App. A.4);
        `offline_calls_` counts those CE scores."""
        check_param("rounds", "AXNIndex", isinstance(self.rounds, int) and self.rounds >= 1, "an int >= 1", self.rounds)
        check_param(
            "mix",
            "AXNIndex",
            isinstance(self.mix, int | float) and 0.0 <= self.mix <= 1.0,
            "a float in [0, 1]",
            self.mix,
        )
        V = np.asarray(item_embeddings, dtype=np.float64)
        if V.ndim != 2 or V.shape[0] == 0 or V.shape[1] == 0:
            raise InvalidInputError("item_embeddings must be a non-empty (n_items, dim) matrix.")
        if not np.isfinite(V).all():
            raise InvalidInputError("item_embeddings contain NaN or inf.")
        alpha, beta, calls = 0.0, 1.0, 0
        if (anchor_scores is None) != (anchor_first_stage is None):
            raise InvalidInputError("anchor_scores and anchor_first_stage are given together or not at all.")
        if anchor_scores is not None:
            ce = np.asarray(anchor_scores, dtype=np.float64)
            de = np.asarray(anchor_first_stage, dtype=np.float64)
            if ce.shape != de.shape or ce.size < 2 or not (np.isfinite(ce).all() and np.isfinite(de).all()):
                raise InvalidInputError("anchor_scores and anchor_first_stage must be finite, of one shape, ≥ 2 pairs.")
            if ce.std() == 0 or de.std() == 0:
                raise InvalidInputError("anchor_scores and anchor_first_stage must not be constant.")
            beta = float(de.std() / ce.std())
            alpha = float(ce.mean() - de.mean() / beta)
            calls = int(ce.size)
        self.item_embeddings_, self.n_items_ = V, V.shape[0]
        self.score_shift_, self.score_scale_, self.offline_calls_ = alpha, beta, calls
        return self

    def _check(self) -> None:
        if not hasattr(self, "item_embeddings_"):
            raise NotFittedError("AXNIndex is not fitted; call fit() first.")

    def query_embedding(self, items: np.ndarray, exact_scores: np.ndarray) -> np.ndarray:
        """u = argmin ‖V_A u − β(a − α)‖² (minimum-norm, regularised pseudo-inverse) for scored items A (Eq. 4)."""
        self._check()
        targets = self.score_scale_ * (np.asarray(exact_scores, dtype=np.float64) - self.score_shift_)
        V_A = self.item_embeddings_[np.asarray(items, dtype=np.int64)]
        return regularized_pinv(V_A, self.rcond, self.ridge) @ targets

    def search(
        self,
        score_items: ItemScorer,
        k: int,
        budget: int,
        first_stage: np.ndarray | None = None,
        n_first_stage: int | None = None,
    ) -> CURSearchResult:
        """Top-k items for one query spending exactly min(budget, |I|) CE calls through `score_items`.

        The first round has ⌊budget / rounds⌋ items: the `n_first_stage` (default: all) best by `first_stage`, the
        rest a seeded uniform sample. `approx_scores` of the result are on the CE's scale (β, α undone).
        rounds=1 with a first stage is retrieve-and-rerank by that first stage (as in the paper's Fig. 6).
        """
        self._check()
        n, R = self.n_items_, self.rounds
        check_param("k", "AXNIndex.search", isinstance(k, int) and 1 <= k <= n, f"an int in [1, {n}]", k)
        check_param(
            "budget", "AXNIndex.search", isinstance(budget, int) and budget >= R, f"an int >= rounds ({R})", budget
        )
        budget = min(budget, n)
        size = max(1, budget // R)
        sample = np.random.default_rng(self.seed).permutation(n)
        if first_stage is None:
            check_param(
                "n_first_stage", "AXNIndex.search", n_first_stage is None, "None without first_stage", n_first_stage
            )
            check_param("mix", "AXNIndex", self.mix == 0, "0 when search gets no first_stage", self.mix)
            first, stage = sample[:size], None
        else:
            stage = check_first_stage(first_stage, n, "AXNIndex.search")
            first = first_round_items(size, stage, n_first_stage, sample, "AXNIndex.search")
        V, lam, alpha, beta = self.item_embeddings_, float(self.mix), self.score_shift_, self.score_scale_

        def approximate(items: np.ndarray, exact: np.ndarray) -> np.ndarray:
            fitted = V @ self.query_embedding(items, exact)
            mixed = fitted if stage is None or lam == 0 else (1.0 - lam) * fitted + lam * stage
            return mixed / beta + alpha

        return adaptive_rounds(score_items, first, approximate, n, budget, k, R - 1, recompute=True)
