"""Lexical and hybrid search over a collection: BM25 (the `bm25s` package, Lù 2024; Robertson & Zaragoza 2009) and
its fusion with dense retrieval, by reciprocal rank (RRF, Cormack, Clarke & Büttcher 2009, constant 60) or by a
weighted sum of min-max normalised scores (the "convex combination" of Bruch et al. 2023).

The BM25 index is built in memory from the stored texts on first use and rebuilt when the collection's generation
changes (another write, by any process).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from semspace._deps import require
from semspace.errors import check_param
from semspace.search.store import DocumentStore

RRF_K = 60
FUSIONS = ("rrf", "weighted")


class BM25Index:
    """bm25s over (seq, text) pairs, English stop words removed, as the CUR baseline does (interact/cur.py)."""

    def __init__(self, seqs: np.ndarray, texts: list[str], generation: int) -> None:
        self._bm25s = bm25s = require("bm25s", "bm25s", "BM25 search")
        self.seqs, self.generation = seqs, generation
        self._retriever = bm25s.BM25()
        if texts:
            tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
            self._retriever.index(tokens, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document (aligned with `seqs`) for one query."""
        if not len(self.seqs):
            return np.zeros(0)
        tokens = self._bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
        if not tokens:
            return np.zeros(len(self.seqs))
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float64)


def current_bm25(store: DocumentStore, cached: BM25Index | None) -> BM25Index:
    """`cached` when it was built at the store's generation, else a new index over the stored texts."""
    generation = store.generation
    if cached is None or cached.generation != generation:
        seqs, texts = store.seq_texts()
        cached = BM25Index(seqs, texts, generation)
    return cached


def _minmax(scores: np.ndarray) -> np.ndarray:
    if not len(scores):
        return scores
    low, high = scores.min(), scores.max()
    return np.ones_like(scores) if high - low < 1e-12 else (scores - low) / (high - low)


def hybrid_search(
    bm25: BM25Index,
    queries: list[str],
    k: int,
    dense: Callable[[int], tuple[np.ndarray, np.ndarray]],
    store: DocumentStore,
    where: dict | None = None,
    mode: str = "hybrid",
    fusion: str = "rrf",
    alpha: float = 0.5,
    candidates: int = 100,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(scores, seqs) per query: the top-k by BM25 (`mode="bm25"`) or by the fusion of the BM25 and dense
    top-`candidates` lists (`dense(n)`: the dense (scores, seqs) top-n of every query)."""
    check_param("fusion", "Collection.search", fusion in FUSIONS, f"one of {FUSIONS}", fusion)
    check_param(
        "alpha",
        "Collection.search",
        isinstance(alpha, int | float) and 0.0 <= alpha <= 1.0,
        "a number in [0, 1]",
        alpha,
    )
    allowed = None if where is None else store.filter_seqs(where)
    mask = None if allowed is None else np.isin(bm25.seqs, allowed)
    n_cand = max(k, candidates)
    if mode == "hybrid":
        dense_scores, dense_seqs = dense(n_cand)
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    for qi, query in enumerate(queries):
        lexical = bm25.scores(query)
        if mask is not None:
            lexical = np.where(mask, lexical, -np.inf)
        order = np.argsort(-lexical, kind="stable")[: min(n_cand if mode == "hybrid" else k, len(lexical))]
        order = order[np.isfinite(lexical[order]) & (lexical[order] > 0)]  # BM25 0: no query term in the document
        lex_seqs, lex_scores = bm25.seqs[order], lexical[order]
        if mode == "bm25":
            rows.append((lex_scores, lex_seqs))
            continue
        keep = dense_seqs[qi] >= 0
        d_seqs, d_scores = dense_seqs[qi][keep], dense_scores[qi][keep].astype(np.float64)
        fused: dict[int, float] = {}
        if fusion == "rrf":
            for ranked in (d_seqs, lex_seqs):
                for rank, seq in enumerate(ranked.tolist()):
                    fused[seq] = fused.get(seq, 0.0) + 1.0 / (RRF_K + rank + 1)
        else:
            for weight, ranked, scores in ((alpha, d_seqs, d_scores), (1.0 - alpha, lex_seqs, lex_scores)):
                for seq, score in zip(ranked.tolist(), _minmax(scores).tolist(), strict=True):
                    fused[seq] = fused.get(seq, 0.0) + weight * score
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        rows.append((np.array([s for _, s in best]), np.array([q for q, _ in best], dtype=np.int64)))
    return rows
