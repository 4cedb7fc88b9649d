"""FAISS index described by a factory string ("Flat", "IVF256,Flat", "HNSW32"), inner product on normalised vectors,
with stable int64 ids (IndexIDMap2). semspace invents no ANN algorithm: this only drives FAISS.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from semspace.errors import InvalidParameterError

logger = logging.getLogger(__name__)

_IVF = re.compile(r"(?:^|,)IVF(\d+)")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise InvalidParameterError("Search needs faiss, a dependency of semspace: pip install faiss-cpu") from None
    return faiss


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class VectorIndex:
    """A FAISS index over normalised vectors; `ivf_nlist` > 0 means it must be trained before use.

    IVF is trained for the user: until the collection holds at least `nlist` vectors an exact flat index serves the
    queries; the first change that reaches `nlist` trains IVF on every stored vector. HNSW cannot remove vectors in
    FAISS, so a delete rebuilds it from the stored vectors (deletes really remove).
    """

    def __init__(self, factory: str, dim: int) -> None:
        faiss = _faiss()
        self.factory = factory
        self.dim = dim
        match = _IVF.search(factory)
        self.ivf_nlist = int(match.group(1)) if match else 0
        try:
            probe = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise InvalidParameterError(
                f"Invalid FAISS factory string {factory!r}: {str(exc).splitlines()[-1]}"
            ) from None
        self.supports_remove = "HNSW" not in factory
        self._index = self._with_ids(probe if probe.is_trained else faiss.IndexFlatIP(dim))
        # nprobe 32 with nlist = 4√N: recall@10 vs exact ≥ 0.95 on our retrieval sets (docs/results/search.md).
        self.nprobe = 32
        self.ef_search = 128

    @staticmethod
    def _with_ids(base):
        """IVF stores user ids natively (and IndexIDMap over IVF breaks on remove_ids); others get IndexIDMap2."""
        faiss = _faiss()
        return base if isinstance(faiss.downcast_index(base), faiss.IndexIVF) else faiss.IndexIDMap2(base)

    def _inner(self):
        faiss = _faiss()
        return faiss.downcast_index(self._index.index) if hasattr(self._index, "id_map") else self._index

    @property
    def is_exact_fallback(self) -> bool:
        """True while an IVF collection is still too small to train and a flat index stands in."""
        faiss = _faiss()
        return self.ivf_nlist > 0 and isinstance(self._inner(), faiss.IndexFlat)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def rebuild(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        """Build from scratch from (ids, already transformed) vectors; trains IVF when there are enough."""
        faiss = _faiss()
        x = normalize_rows(vectors)
        base = faiss.index_factory(self.dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        if not base.is_trained:
            if len(x) >= self.ivf_nlist:
                base.train(x)
            else:
                base = faiss.IndexFlatIP(self.dim)
        self._index = self._with_ids(base)
        if len(x):
            self._index.add_with_ids(x, np.asarray(seqs, dtype=np.int64))

    def needs_rebuild_for_add(self, n_after: int) -> bool:
        return self.is_exact_fallback and n_after >= self.ivf_nlist

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(normalize_rows(vectors), np.asarray(seqs, dtype=np.int64))

    def remove(self, seqs: np.ndarray) -> None:
        removed = self._index.remove_ids(np.asarray(seqs, dtype=np.int64))
        if removed != len(seqs):
            logger.warning("FAISS removed %d of %d ids", removed, len(seqs))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n, k), padded with −inf / −1 as FAISS does."""
        inner = self._inner()
        if hasattr(inner, "nprobe"):
            inner.nprobe = min(self.nprobe, getattr(inner, "nlist", self.nprobe))
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = max(self.ef_search, k)
        if self.ntotal == 0:
            n = len(queries)
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        scores, ids = self._index.search(normalize_rows(queries), k)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids

    def to_bytes(self) -> bytes:
        return _faiss().serialize_index(self._index).tobytes()

    def load_bytes(self, data: bytes) -> None:
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.d != self.dim:
            raise ValueError(f"index has dimension {index.d}, expected {self.dim}")
        # Keep the object deserialize_index returned (already downcast): a downcast wrapper would not own the
        # memory, and the index would be freed under it (segfault).
        self._index = index
