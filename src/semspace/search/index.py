"""FAISS index described by a factory string ("Flat", "IVF256,Flat", "HNSW32", "SQ8", "PQ16", "IVF256,PQ16",
"HNSW32,SQ8", "OPQ16,PQ16", …), inner product on normalised vectors, with stable int64 ids. semspace invents no ANN
algorithm: this only drives FAISS.

A factory string is tried end to end when the collection is created (train on a synthetic sample, add with ids,
search, remove, serialise): one that FAISS cannot carry through is refused before anything is written.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from semspace.errors import InvalidParameterError

logger = logging.getLogger(__name__)

TRAIN_MAX = 50_000  # vectors a trained index is trained on (a fixed random sample of them beyond this)
_IVF = re.compile(r"(?:^|,)IVF(\d+)")
_TRANSFORM = re.compile(r"(?:^|,)(?:OPQ|PCA|ITQ)")
_SQ = re.compile(r"(?:^|,)SQ")
_PQ = re.compile(r"(?:^|,|_)(?:O?PQ)(\d+)(?:x(\d+))?")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise InvalidParameterError("Search needs faiss, a dependency of semspace: pip install faiss-cpu") from None
    return faiss


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def min_training_points(factory: str, dim: int) -> int:
    """Vectors needed before an untrained factory can be trained: k-means needs at least as many points as
    centroids (IVF lists; 2^nbits codewords per PQ/OPQ sub-quantizer); scalar quantizers (SQ8, …) take 256 so that
    their value ranges are not those of a handful of vectors; a trained rotation or projection (OPQ, PCA,
    ITQ) needs at least `dim` points (FAISS 1.15 aborts the process on fewer for OPQ)."""
    need = dim if _TRANSFORM.search(factory) else 1
    if _SQ.search(factory):
        need = max(need, 256)  # a scalar quantizer's per-dimension ranges come from the training sample
    if match := _IVF.search(factory):
        need = max(need, int(match.group(1)))
    for match in _PQ.finditer(factory):
        need = max(need, 2 ** int(match.group(2) or 8))
    return need


def _skip_polysemous_training(index) -> None:
    """FAISS's "PQ8" trains polysemous codes by simulated annealing (~10 s, even on 256 points) for a Hamming
    pre-filter semspace never uses: skip it, as the factory suffix "np" would."""
    faiss = _faiss()
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    if isinstance(inner, faiss.IndexPQ | faiss.IndexIVFPQ):
        inner.do_polysemous_training = False


class VectorIndex:
    """A FAISS index over normalised vectors.

    Factories that need training are trained for the user: until the collection holds `min_train` vectors an exact
    flat index serves the queries; the first change that reaches `min_train` trains the real index on every stored
    vector. Indexes that cannot remove vectors in FAISS (HNSW) are rebuilt from the stored vectors on delete.
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
        self.needs_training = not probe.is_trained
        self.min_train = min_training_points(factory, dim) if self.needs_training else 0
        self.supports_remove = "HNSW" not in factory
        self._index = self._with_ids(probe if probe.is_trained else faiss.IndexFlatIP(dim))
        # nprobe 32 with nlist = 4√N: recall@10 vs exact ≥ 0.95 on our retrieval sets (docs/results/search.md).
        self.nprobe = 32
        self.ef_search = 128

    @staticmethod
    def _with_ids(base):
        """IVF stores user ids natively (and IndexIDMap over IVF breaks on remove_ids); others get IndexIDMap2."""
        faiss = _faiss()
        return base if faiss.try_extract_index_ivf(base) is not None else faiss.IndexIDMap2(base)

    def _inner(self):
        faiss = _faiss()
        return faiss.downcast_index(self._index.index) if hasattr(self._index, "id_map") else self._index

    def check_end_to_end(self) -> None:
        """Train (if needed), add with ids, search, remove and serialise a synthetic sample with this factory;
        InvalidParameterError naming the step that FAISS refused. Run by `Collection.create` before any file."""
        rng = np.random.default_rng(0)
        n = max(self.min_train, 64)
        x = rng.normal(size=(n, self.dim)).astype(np.float32)
        trial = VectorIndex(self.factory, self.dim)
        step = "train"
        try:
            trial.rebuild(np.arange(n, dtype=np.int64) * 3, x)
            step = "search"
            _, found = trial.search(x[:2], 5)
            if (found < 0).all():
                raise RuntimeError("no results")
            if trial.supports_remove:
                step = "remove"
                trial.remove(np.array([0, 3], dtype=np.int64))
            step = "serialise"
            trial.load_bytes(trial.to_bytes())
            step = "list ids"
            if len(trial.ids()) != trial.ntotal:
                raise RuntimeError("the index does not list its ids")
        except (RuntimeError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise InvalidParameterError(
                f"FAISS factory {self.factory!r} does not work for {self.dim}-d collections ({step}: {reason})"
            ) from None

    @property
    def is_exact_fallback(self) -> bool:
        """True while a factory that needs training is too small to train and a flat index stands in."""
        faiss = _faiss()
        return self.needs_training and isinstance(self._inner(), faiss.IndexFlat)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """The int64 ids the index holds (any order): what the content fingerprint is computed from."""
        faiss = _faiss()
        if hasattr(self._index, "id_map"):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        ivf = faiss.extract_index_ivf(self._index)
        invlists = ivf.invlists
        parts = []
        for list_no in range(ivf.nlist):
            size = invlists.list_size(list_no)
            if size:
                ptr = invlists.get_ids(list_no)
                parts.append(faiss.rev_swig_ptr(ptr, size).copy())
                invlists.release_ids(list_no, ptr)
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def rebuild(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        """Build from scratch from (ids, already transformed) vectors; trains when there are enough."""
        faiss = _faiss()
        x = normalize_rows(vectors)
        base = faiss.index_factory(self.dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        if not base.is_trained:
            if len(x) >= self.min_train:
                _skip_polysemous_training(base)
                sample = x
                if len(x) > TRAIN_MAX:  # k-means/OPQ cost grows with the sample; FAISS itself samples 256/centroid
                    sample = x[np.sort(np.random.default_rng(0).choice(len(x), TRAIN_MAX, replace=False))]
                base.train(sample)
            else:
                base = faiss.IndexFlatIP(self.dim)
        self._index = self._with_ids(base)
        if len(x):
            self._index.add_with_ids(x, np.asarray(seqs, dtype=np.int64))

    def needs_rebuild_for_add(self, n_after: int) -> bool:
        return self.is_exact_fallback and n_after >= self.min_train

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(normalize_rows(vectors), np.asarray(seqs, dtype=np.int64))

    def remove(self, seqs: np.ndarray) -> None:
        removed = self._index.remove_ids(np.asarray(seqs, dtype=np.int64))
        if removed != len(seqs):
            logger.warning("FAISS removed %d of %d ids", removed, len(seqs))

    def _params(self, k: int, selector=None):
        faiss = _faiss()
        ivf = faiss.try_extract_index_ivf(self._index)
        inner = self._inner()
        if ivf is not None:
            ivf.nprobe = min(self.nprobe, ivf.nlist)
            return faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe) if selector is not None else None
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = max(self.ef_search, k)
            if selector is not None:
                return faiss.SearchParametersHNSW(sel=selector, efSearch=inner.hnsw.efSearch)
            return None
        return faiss.SearchParameters(sel=selector) if selector is not None else None

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n, k), padded with −inf / −1 as FAISS does. `allowed` restricts the search to those
        ids (a FAISS IDSelectorBatch); RuntimeError when this index type cannot search with a selector."""
        faiss = _faiss()
        n = len(queries)
        if self.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params = self._params(k, selector)
        if params is None:
            scores, ids = self._index.search(normalize_rows(queries), k)
        else:
            scores, ids = self._index.search(normalize_rows(queries), k, params=params)
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
