"""The query side of a collection: dense top-k over the in-memory index, optionally among the documents whose
metadata match a filter (exact over their stored vectors when few match, else FAISS with an id selector)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from semspace.search.index import VectorIndex, normalize_rows
from semspace.search.store import DocumentStore

logger = logging.getLogger(__name__)

EXACT_FILTER_MAX = 20_000  # a filter matching at most this many documents is scored exactly


def dense_search(
    index: VectorIndex,
    store: DocumentStore,
    project: Callable[[np.ndarray], np.ndarray],
    queries: np.ndarray,
    k: int,
    where: dict | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, seqs), each (n, ≤k), −1 padded, for already projected `queries`."""
    if where is None:
        return index.search(queries, min(k, max(index.ntotal, 1)))
    return filtered_search(index, store, project, queries, k, store.filter_seqs(where))


def filtered_search(
    index: VectorIndex,
    store: DocumentStore,
    project: Callable[[np.ndarray], np.ndarray],
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k among `allowed` seqs, exactly: a selector search when the index is flat; else cosine over the
    vectors the index holds exactly (HNSW over flat storage) or over the stored raw vectors (quantised indexes), or,
    past EXACT_FILTER_MAX matches, FAISS's approximate search with an IDSelectorBatch."""
    k = min(k, max(len(allowed), 1))
    if index.is_exact or len(allowed) > EXACT_FILTER_MAX:
        try:
            return index.search(queries, k, allowed=allowed)
        except RuntimeError:
            logger.info("%s cannot search with an id selector; scoring the filtered documents exactly", index.factory)
    exact = index.reconstruct(allowed) if len(allowed) <= EXACT_FILTER_MAX else None
    if exact is not None:
        scores = normalize_rows(queries) @ exact.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1).astype(np.float32), allowed[order].astype(np.int64)
    q = normalize_rows(queries)
    best_scores = np.full((len(q), k), -np.inf, np.float32)
    best_seqs = np.full((len(q), k), -1, np.int64)
    for lo in range(0, len(allowed), EXACT_FILTER_MAX):
        seqs, raw = store.vectors_by_seq(allowed[lo : lo + EXACT_FILTER_MAX])
        if not len(seqs):
            continue
        scores = q @ normalize_rows(project(raw)).T
        all_scores = np.hstack([best_scores, scores.astype(np.float32)])
        all_seqs = np.hstack([best_seqs, np.broadcast_to(seqs, scores.shape)])
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, order, axis=1)
        best_seqs = np.take_along_axis(all_seqs, order, axis=1)
    best_seqs = np.where(np.isfinite(best_scores), best_seqs, -1)
    return best_scores, best_seqs
