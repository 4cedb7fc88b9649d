"""What sentence-transformers users reach for in ``sentence_transformers.util``, under the same names, for vectors
from :class:`semspace.Encoder` (NumPy in, the same results out): ``semantic_search``, ``cos_sim``.

Both delegate to sentence-transformers (a semspace dependency), so results are exactly its own. For a corpus that
outgrows memory, or needs filters, hybrid BM25 or persistence, use a :class:`semspace.search.Collection`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semspace.encode.output import similarity

__all__ = ["cos_sim", "semantic_search"]


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500_000,
    score_function: Any = None,
) -> list[list[dict[str, int | float]]]:
    """For each query row, the `top_k` corpus rows by cosine (or `score_function(a, b)`): a list per query of
    ``{"corpus_id": int, "score": float}``, best first — ``sentence_transformers.util.semantic_search``."""
    from sentence_transformers.util import cos_sim as st_cos_sim
    from sentence_transformers.util import semantic_search as st_semantic_search

    return st_semantic_search(
        _tensor(query_embeddings),
        _tensor(corpus_embeddings),
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        top_k=top_k,
        score_function=score_function or st_cos_sim,
    )


def cos_sim(a: Any, b: Any) -> np.ndarray:
    """Cosine of every row of `a` with every row of `b`, float32 (n_a, n_b) — ``sentence_transformers.util.cos_sim``
    as NumPy."""
    return similarity(a, b, "cosine")


def _tensor(x: Any) -> Any:
    import torch

    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.atleast_2d(x).astype(np.float32, copy=False))
    return x
