"""Retrieval metrics over ranked id lists: nDCG@10 (graded, log2 discount, as BEIR/pytrec_eval), recall@k, MRR@10."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semspace.data.retrieval import RetrievalTask
from semspace.encode import EmbeddingCache, Encoder
from semspace.search import VectorIndex
from semspace.transform import Whitening


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    gains = [relevant.get(doc, 0) for doc in ranked[:k]]
    dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
    return float(dcg / idcg) if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    hits = sum(1 for doc in ranked[:k] if relevant.get(doc, 0) > 0)
    total = sum(1 for g in relevant.values() if g > 0)
    return hits / total if total else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, doc in enumerate(ranked[:k]) if relevant.get(doc, 0) > 0), 0.0)


def retrieval_scores(rankings: dict[str, Sequence[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, recall@10, recall@100 and MRR@10 (×100) over the queries in qrels."""
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


def recall_vs_exact(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int = 10) -> float:
    """Mean fraction of the exact top-k found by the approximate top-k (FAISS's usual ANN check)."""
    found = [len(set(a[:k]) & set(e[:k])) / k for a, e in zip(approx_ids, exact_ids, strict=True)]
    return float(np.mean(found))


def evaluate_retrieval(
    task: RetrievalTask,
    encoder: Encoder,
    cache: EmbeddingCache | None = None,
    transforms: dict[str, Whitening | None] | None = None,
    index: str = "Flat",
) -> list[dict]:
    """Encode corpus and queries (through the cache when given), then score each transform with a FAISS index.

    `transforms` maps a label to a fitted Whitening (None = raw); fitted on the corpus when given unfitted.
    """

    def embed(texts: list[str]) -> np.ndarray:
        return cache.encode(encoder, texts)[encoder.pooling] if cache is not None else encoder.encode(texts)

    docs, queries = embed(task.doc_texts), embed(task.query_texts)
    rows = []
    for label, transform in (transforms or {"raw": None}).items():
        if transform is not None and not hasattr(transform, "kernel_"):
            transform.fit(docs)
        d_vec = docs if transform is None else transform.transform(docs)
        q_vec = queries if transform is None else transform.transform(queries)
        vector_index = VectorIndex(index, d_vec.shape[1])
        vector_index.rebuild(np.arange(len(docs), dtype=np.int64), d_vec)
        _, ids = vector_index.search(q_vec, 100)
        rankings = {q: [task.doc_ids[i] for i in row if i >= 0] for q, row in zip(task.query_ids, ids, strict=True)}
        rows.append(
            {
                "task": task.name,
                "model": encoder.model_id,
                "transform": label,
                "index": index,
                "dim": d_vec.shape[1],
                **retrieval_scores(rankings, task.qrels),
            }
        )
    return rows
