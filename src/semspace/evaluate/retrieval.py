"""Retrieval evaluation: encode a task's corpus and queries, search with FAISS, score with :mod:`semspace.metrics`
(nDCG@10, recall@10/100, MRR@10 as BEIR/pytrec_eval)."""

from __future__ import annotations

import numpy as np

from semspace.data.retrieval import RetrievalTask
from semspace.encode import EmbeddingCache, Encoder
from semspace.metrics import retrieval_scores
from semspace.search import VectorIndex
from semspace.transform import Whitening


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
