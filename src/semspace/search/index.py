"""FAISS index described by a factory string ("Flat", "IVF256,Flat", "HNSW32", "SQ8", "PQ16", "IVF256,PQ16",
"HNSW32,SQ8", "OPQ16,PQ16", …, and FAISS's binary "BFlat"), inner product on normalised vectors (Hamming distance on
their sign bits for "BFlat", search/binary.py), with stable int64 ids. semspace invents no ANN algorithm: this only
drives FAISS. A collection's `precision` (float32, int8, binary) picks the quantized factory for its index.

A factory string is tried end to end when the collection is created (train on a synthetic sample, add with ids,
search, remove, serialise): one that FAISS cannot carry through is refused before anything is written.
"""

from __future__ import annotations

import errno
import logging
import os
import re

import numpy as np

from semspace._deps import require
from semspace.errors import InvalidParameterError, check_param

logger = logging.getLogger(__name__)

TRAIN_MAX = 50_000  # vectors a trained index is trained on (a fixed random sample of them beyond this)
_IVF = re.compile(r"(?:^|,)IVF(\d+)")
_TRANSFORM = re.compile(r"(?:^|,)(?:OPQ|PCA|ITQ)")
_SQ = re.compile(r"(?:^|,)SQ")
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)
_PQ = re.compile(r"(?:^|,|_)(?:O?PQ)(\d+)(?:x(\d+))?")
_BINARY = re.compile(r"B[A-Z]")  # FAISS's binary factories: BFlat, BIVF…, BHNSW…
PRECISIONS = ("float32", "int8", "binary")


def _faiss():
    return require("faiss", "faiss-cpu", "Search")


def factory_for_precision(index: str, precision: str) -> str:
    """The FAISS factory that keeps `index`'s vectors at `precision`: ``float32`` as given; ``int8`` FAISS's 8-bit
    scalar quantizer (IndexScalarQuantizer QT_8bit, "SQ8"), also as the storage of an IVF or HNSW index
    ("IVF256,SQ8", "HNSW32,SQ8"); ``binary`` FAISS's IndexBinaryFlat ("BFlat": sign bits, Hamming distance), for
    ``Flat`` only. The precisions of sentence-transformers' ``quantize_embeddings``; InvalidParameterError for a
    combination FAISS has no index for (PQ codes are quantized already)."""
    check_param("precision", "Collection.create", precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}", precision)
    if precision == "float32":
        return index
    if precision == "int8":
        if index == "Flat":
            return "SQ8"
        if match := re.fullmatch(r"(HNSW\d+)(?:,Flat)?|(IVF\d+),Flat", index):
            return f"{match.group(1) or match.group(2)},SQ8"
    if precision == "binary" and index == "Flat":
        return "BFlat"
    offered = "Flat, IVF<n>,Flat or HNSW<m>" if precision == "int8" else "Flat"
    raise InvalidParameterError(
        f"precision={precision!r} is not available with index={index!r}: FAISS quantizes to {precision} with "
        f"index {offered} (or give the quantized factory string itself as index, with precision='float32')."
    )


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
    vector.

    A deletion is a tombstone: the id stays in the FAISS structure and every search excludes it with an
    ``IDSelectorNot`` (removing one vector from a flat index moves every vector after it; HNSW cannot remove at all).
    `purge_tombstones` removes them physically where FAISS can, at compaction. `ntotal` counts live vectors.
    """

    def __new__(cls, *args: object, **kwargs: object) -> VectorIndex:
        # a binary factory string gets FAISS's binary index family (its own vector type and distance)
        factory = args[0] if args else kwargs.get("factory")
        if cls is VectorIndex and isinstance(factory, str) and _BINARY.match(factory):
            from semspace.search.binary import BinaryVectorIndex

            return super().__new__(BinaryVectorIndex)
        return super().__new__(cls)

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
        self._dead = np.zeros(0, np.int64)  # tombstoned ids, sorted
        self._dead_selector = None  # IDSelectorNot over them (its IDSelectorBatch kept alive beside it)

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
    def is_exact(self) -> bool:
        """True when a search is exhaustive over exact vectors (a flat index, or the stand-in of an untrained one):
        a search restricted by an id selector then gives the exact top-k."""
        faiss = _faiss()
        return isinstance(self._inner(), faiss.IndexFlat)

    def reconstruct(self, seqs: np.ndarray) -> np.ndarray | None:
        """The stored (normalised) vectors of `seqs` when this index keeps them exactly (flat or HNSW over flat
        storage); None when it keeps codes (PQ, SQ, IVF) or does not hold one of the ids."""
        faiss = _faiss()
        inner = self._inner()
        storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
        if not hasattr(self._index, "id_map") or not isinstance(storage, faiss.IndexFlat):
            return None
        seqs = np.ascontiguousarray(seqs, dtype=np.int64)
        try:
            return self._index.reconstruct_batch(seqs)
        except RuntimeError:  # an id the index does not hold (the store is newer than this index)
            return None

    @property
    def ntotal(self) -> int:
        """Live vectors: those in the FAISS structure minus the tombstones."""
        return int(self._index.ntotal) - len(self._dead)

    @property
    def physical_total(self) -> int:
        return int(self._index.ntotal)

    @property
    def tombstones(self) -> np.ndarray:
        return self._dead

    def tombstone(self, seqs: np.ndarray) -> None:
        """Exclude `seqs` (ids in the index) from every search from now on."""
        seqs = np.asarray(seqs, dtype=np.int64)
        if not len(seqs):
            return
        self._dead = np.union1d(self._dead, seqs)
        self._dead_selector = None

    def purge_tombstones(self) -> bool:
        """Remove the tombstoned vectors from the FAISS structure; False when this index type cannot (HNSW)."""
        if not len(self._dead):
            return True
        if not self.supports_remove:
            return False
        self.remove(self._dead)
        self._dead = np.zeros(0, np.int64)
        self._dead_selector = None
        return True

    def ids(self) -> np.ndarray:
        """The int64 ids in the FAISS structure (any order, tombstones included): what a checkpoint's content
        fingerprint is computed from."""
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

    def live_ids(self) -> np.ndarray:
        """The ids a search can return: `ids()` minus the tombstones."""
        return np.setdiff1d(self.ids(), self._dead) if len(self._dead) else self.ids()

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
        self._dead = np.zeros(0, np.int64)
        self._dead_selector = None
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

    def _live_selector(self):
        if self._dead_selector is None and len(self._dead):
            faiss = _faiss()
            batch = faiss.IDSelectorBatch(self._dead)
            selector = faiss.IDSelectorNot(batch)
            selector.batch = batch  # IDSelectorNot does not own its operand: keep it alive as long as the selector
            self._dead_selector = selector
        return self._dead_selector

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n, k), padded with −inf / −1 as FAISS does. `allowed` restricts the search to those
        (live) ids (a FAISS IDSelectorBatch); RuntimeError when this index type cannot search with a selector.
        Tombstoned ids never come back."""
        faiss = _faiss()
        n = len(queries)
        if self.ntotal <= 0 or (allowed is not None and len(allowed) == 0):
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, dtype=np.int64)
            if len(self._dead):
                allowed = np.setdiff1d(allowed, self._dead, assume_unique=True)
            batch = faiss.IDSelectorBatch(allowed)
            return self._search(queries, k, batch)
        if not len(self._dead):
            return self._search(queries, k, None)
        try:
            return self._search(queries, k, self._live_selector())
        except RuntimeError:  # an index type that takes no selector: over-fetch and drop the tombstones
            wide = min(k + len(self._dead), self.physical_total)
            scores, ids = self._search(queries, wide, None)
            dead = np.isin(ids, self._dead)
            order = np.argsort(dead, axis=1, kind="stable")[:, :k]
            scores = np.where(dead, -np.inf, scores)
            ids = np.where(dead, -1, ids)
            return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def _search(self, queries: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
        params = self._params(k, selector)
        if params is None:
            scores, ids = self._index.search(normalize_rows(queries), k)
        else:
            scores, ids = self._index.search(normalize_rows(queries), k, params=params)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        return scores, ids

    def to_bytes(self) -> bytes:
        return _faiss().serialize_index(self._index).tobytes()

    def _faiss_io(self) -> tuple:
        """FAISS's (write_index, read_index, deserialize_index) for this index family."""
        faiss = _faiss()
        return faiss.write_index, faiss.read_index, faiss.deserialize_index

    def write(self, path: str) -> None:
        """Write the FAISS structure (tombstones are the store's business, not the file's) to `path`. A write the
        disk refuses raises OSError with its errno (FAISS itself raises a RuntimeError naming the C error)."""
        try:
            self._faiss_io()[0](self._index, str(path))
        except RuntimeError as exc:
            number = next((n for n in _WRITE_ERRNOS if os.strerror(n) in str(exc)), errno.EIO)
            raise OSError(number, f"{os.strerror(number)} (FAISS write_index)", str(path)) from None

    def read(self, path: str) -> None:
        """Replace the structure with the index file at `path` (no tombstones)."""
        self._set(self._faiss_io()[1](str(path)))

    def load_bytes(self, data: bytes) -> None:
        self._set(self._faiss_io()[2](np.frombuffer(data, dtype=np.uint8)))

    def _set(self, index) -> None:
        expected = getattr(self, "bits", self.dim)  # a binary index's dimension is its code's bits
        if index.d != expected:
            raise ValueError(f"index has dimension {index.d}, expected {expected}")
        # Keep the object FAISS returned (already downcast): a downcast wrapper would not own the memory, and the
        # index would be freed under it (segfault).
        self._index = index
        self._dead = np.zeros(0, np.int64)
        self._dead_selector = None
