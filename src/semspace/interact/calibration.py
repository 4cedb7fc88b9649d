"""Which budgeted cross-encoder search to run: retrieve-and-rerank or CUR, chosen by a measurement.

At a budget of B cross-encoder (CE) calls a query, two families compete (Yadav et al., EMNLP 2022 / Findings of
EMNLP 2023 / ICLR 2024): RnR-DE — the bi-encoder's (dual encoder's) top-B items re-ranked by the CE — and CUR search
(ANNCUR, one round; adaCUR, several rounds, the first starting from the bi-encoder's top items). Which one finds
more of the CE's exact top-k depends on the models, the items and B, so :func:`calibrate_rerank` measures it with
what building a CUR index already computed, R_anc (the exact CE scores of every anchor query against every item):
the anchor queries are split into folds; for each fold a CUR index with the same settings is fitted on the other
folds' rows, and each held-out anchor query is searched by every method (its CE scores looked up in R_anc, so no
CE call is made) and scored by Top-k-Recall@B against its exact top-k (:func:`semspace.metrics.recall_vs_exact`).
The fold indexes have (n_folds − 1)/n_folds of the anchor queries, so CUR is measured slightly pessimistically.

:meth:`RerankCalibration.choose` then picks, for a requested k and B, the method with the higher mean recall at
the measured budget nearest to B and the measured k nearest to k (ties go to RnR, the cheapest online).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from semspace._io import read_artifact_json, write_artifact_json
from semspace.errors import ArtifactError, InvalidInputError, check_param
from semspace.interact.cur import CURIndex, CURSearchResult, ItemScorer, retrieve_and_rerank
from semspace.metrics import exact_top_k, recall_vs_exact
from semspace.search.index import normalize_rows

logger = logging.getLogger(__name__)

CALIBRATION = "calibration.json"
_FORMAT = "semspace.cur_calibration"
# The methods measured, in the order that breaks ties (the cheapest online first): RnR-DE; ANNCUR (one round,
# fitted anchors); adaCUR with its first round from the bi-encoder's top items (adaCUR_DE of the AXN paper).
METHODS = ("rnr", "cur", "adacur")
ADACUR_ROUNDS = 5
DEFAULT_BUDGETS = (10, 20, 50, 100, 200, 500, 1000)
DEFAULT_KS = (1, 10)
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class RerankChoice:
    """What :meth:`RerankCalibration.choose` picked: a method of :data:`METHODS`, its rounds, and one line why."""

    method: str
    rounds: int
    reason: str


@dataclass
class RerankCalibration:
    """Mean Top-k-Recall@B of each method over the held-out anchor queries (see the module docstring).

    `recall[method][k]` has one value per budget of `budgets` (None where the method cannot run: CUR needs
    B ≥ n_anchor_items)."""

    budgets: list[int]
    ks: list[int]
    recall: dict[str, dict[int, list[float | None]]]
    n_queries: int
    n_folds: int
    n_anchor_items: int
    adacur_rounds: int = ADACUR_ROUNDS
    n_items: int = 0

    def rounds_of(self, method: str) -> int:
        return self.adacur_rounds if method == "adacur" else 1

    def choose(self, k: int, budget: int, available: tuple[str, ...] = METHODS) -> RerankChoice | None:
        """The method among `available` with the highest measured recall at the budget of the table nearest to
        `budget` (the lower one on a tie) and the k nearest to `k`; ties go to the earlier of :data:`METHODS`. Below
        `n_anchor_items` only RnR can run. None when none of `available` was measured there."""
        if budget < self.n_anchor_items and "rnr" in available:
            return rnr_below_anchor_items(budget, self.n_anchor_items)
        b = min(range(len(self.budgets)), key=lambda i: (abs(self.budgets[i] - budget), self.budgets[i]))
        kk = min(self.ks, key=lambda x: (abs(x - k), x))
        values = {m: self.recall.get(m, {}).get(kk, [None] * len(self.budgets))[b] for m in METHODS if m in available}
        values = {m: v for m, v in values.items() if v is not None}
        if not values:
            return None
        best = max(values, key=lambda m: (values[m], -METHODS.index(m)))
        others = ", ".join(f"{m} {v:.2f}" for m, v in values.items() if m != best)
        near = "" if self.budgets[b] == budget and kk == k else f" (nearest measured to k={k}, B={budget})"
        reason = (
            f"{best}: Top-{kk}-Recall@{self.budgets[b]} {values[best]:.2f}"
            + (f" vs {others}" if others else "")
            + f" on {self.n_queries} held-out anchor queries{near}"
        )
        return RerankChoice(best, self.rounds_of(best), reason)

    def summary(self) -> str:
        """One line: the best method and its recall at each budget, at the largest k measured."""
        k = max(self.ks)
        best = []
        for b in self.budgets:
            choice = self.choose(k, b)
            if choice is not None:
                value = self.recall[choice.method][k][self.budgets.index(b)]
                best.append(f"B={b} {choice.method} {value:.2f}")
        return (
            f"calibration on {self.n_queries} held-out anchor queries ({self.n_folds} folds), "
            f"best Top-{k}-Recall@B: " + ", ".join(best)
        )

    # -- persistence -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "budgets": self.budgets,
            "ks": self.ks,
            "recall": {m: {str(k): v for k, v in by_k.items()} for m, by_k in self.recall.items()},
            "n_queries": self.n_queries,
            "n_folds": self.n_folds,
            "n_anchor_items": self.n_anchor_items,
            "adacur_rounds": self.adacur_rounds,
            "n_items": self.n_items,
            "measure": "mean Top-k-Recall@B vs the exact CE top-k over held-out anchor queries",
        }

    @classmethod
    def from_dict(cls, body: dict, where: str = "calibration") -> RerankCalibration:
        try:
            budgets, ks = [int(b) for b in body["budgets"]], [int(k) for k in body["ks"]]
            recall = {
                str(m): {int(k): [None if v is None else float(v) for v in values] for k, values in by_k.items()}
                for m, by_k in body["recall"].items()
            }
            ok = budgets and ks and all(len(v) == len(budgets) for by_k in recall.values() for v in by_k.values())
            if not ok:
                raise ValueError("budgets, ks and recall rows do not match")
            return cls(
                budgets,
                ks,
                recall,
                int(body["n_queries"]),
                int(body["n_folds"]),
                int(body["n_anchor_items"]),
                int(body.get("adacur_rounds", ADACUR_ROUNDS)),
                int(body.get("n_items", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArtifactError(f"{where}: corrupt calibration table ({exc})") from None

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CALIBRATION
        write_artifact_json(path, _FORMAT, self.to_dict())
        return path

    @classmethod
    def load(cls, folder: str | Path) -> RerankCalibration:
        path = Path(folder) / CALIBRATION
        return cls.from_dict(read_artifact_json(path, _FORMAT), str(path))


def rnr_below_anchor_items(budget: int, n_anchor_items: int) -> RerankChoice:
    """RnR, the only method that fits a budget below the anchor items CUR must score first."""
    return RerankChoice("rnr", 1, f"rnr: the budget {budget} is below the {n_anchor_items} anchor items CUR scores")


def run_method(
    method: str,
    rounds: int,
    index: CURIndex,
    score_items: ItemScorer,
    first_stage: np.ndarray | None,
    k: int,
    budget: int,
) -> CURSearchResult:
    """One query by one of :data:`METHODS` at `budget` CE calls: "rnr" (the `budget` best items by `first_stage`
    re-ranked; top min(k, budget)), "cur" (the fitted anchors, `rounds`) or "adacur" (`rounds`, the first round from
    `first_stage`'s top items). The one dispatch the calibration, :class:`~semspace.interact.searcher.CURSearcher`
    and the benchmarks share."""
    if method == "rnr":
        return retrieve_and_rerank(first_stage, score_items, min(k, budget), budget)
    if method == "adacur":
        return index.search(score_items, k, budget, rounds=rounds, first_stage=first_stage)
    return index.search(score_items, k, budget, rounds=rounds)


def calibrate_rerank(
    anchor_scores: np.ndarray,
    query_vectors: np.ndarray,
    item_vectors: np.ndarray,
    index: CURIndex,
    budgets: tuple[int, ...] = DEFAULT_BUDGETS,
    ks: tuple[int, ...] = DEFAULT_KS,
    n_folds: int = DEFAULT_FOLDS,
    adacur_rounds: int = ADACUR_ROUNDS,
    seed: int = 0,
) -> RerankCalibration | None:
    """Measure RnR-DE, CUR (rounds=1) and adaCUR (`adacur_rounds`, first round from the bi-encoder's top items)
    by k-fold cross-validation over the anchor queries (module docstring). No CE call: the held-out rows of
    `anchor_scores` (R_anc, k_q × |I|) are the exact scores. `index` gives the CUR settings (its fitted state, if
    any, is not used). Budgets and ks are capped at |I|; `n_folds` at k_q. None (logged) with fewer than 2 anchor
    queries."""
    from sklearn.model_selection import KFold

    R, Q, V = (np.asarray(x, dtype=np.float64) for x in (anchor_scores, query_vectors, item_vectors))
    if R.ndim != 2 or Q.ndim != 2 or V.ndim != 2 or Q.shape != (R.shape[0], V.shape[1]) or V.shape[0] != R.shape[1]:
        raise InvalidInputError(
            f"calibrate_rerank needs R_anc (k_q, |I|), query vectors (k_q, d) and item vectors (|I|, d); got "
            f"{R.shape}, {Q.shape}, {V.shape}."
        )
    Q, V = normalize_rows(Q).astype(np.float64), normalize_rows(V).astype(np.float64)
    check_param("n_folds", "calibrate_rerank", isinstance(n_folds, int) and n_folds >= 2, "an int >= 2", n_folds)
    n_queries, n_items = R.shape
    if n_queries < 2:
        logger.info("calibration skipped: %d anchor query (at least 2 are needed)", n_queries)
        return None
    grid = sorted({min(int(b), n_items) for b in budgets})
    k_grid = sorted({min(int(k), n_items) for k in ks})
    k_max, k_i = max(k_grid), index.n_anchor_items
    folds = min(n_folds, n_queries)
    per_query = {m: {k: [[] for _ in grid] for k in k_grid} for m in METHODS}
    splits = KFold(folds, shuffle=True, random_state=seed).split(R)
    with tqdm(total=n_queries, desc="Calibrating RnR vs CUR", unit="query") as bar:
        for train, held_out in splits:
            fold = CURIndex(index.n_anchor_items, index.anchor_items, index.rcond, index.ridge, index.seed)
            fold.fit_matrix(R[train], V if index.anchor_items == "kmeans" else None)
            for q in held_out:
                row, de = R[q], V @ Q[q]
                exact = {k: exact_top_k(row, k) for k in k_grid}

                def score(ids: np.ndarray, row: np.ndarray = row) -> np.ndarray:
                    return row[ids]

                for b_pos, b in enumerate(grid):
                    found = {
                        m: run_method(m, 1 if m == "cur" else adacur_rounds, fold, score, de, k_max, b).ids
                        for m in (METHODS if b >= k_i else ("rnr",))
                    }
                    for m, ids in found.items():
                        for k in k_grid:
                            per_query[m][k][b_pos].append(recall_vs_exact(ids, exact[k], k))
                bar.update(1)
    recall = {m: {k: [float(np.mean(v)) if v else None for v in per_query[m][k]] for k in k_grid} for m in METHODS}
    return RerankCalibration(grid, k_grid, recall, n_queries, folds, k_i, adacur_rounds, n_items)
