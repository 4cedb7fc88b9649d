"""Search a shard folder: a searcher that fans a query out to one FAISS index per shard and merges the top-k, or
one IVF index built from per-shard indexes that share a trained quantizer (FAISS's `merge_from`).

Both index the vectors exactly as `semspace.search.VectorIndex` does (optional whitening, rows L2-normalised, inner
product), with the row number in the folder (0 … count−1) as the FAISS id.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np

from semspace.distributed.shards import ShardFolder
from semspace.errors import InvalidParameterError, check_param
from semspace.search.index import VectorIndex, normalize_rows
from semspace.transform.whitening import Whitening

logger = logging.getLogger(__name__)


def _project(vectors: np.ndarray, whitening: Whitening | None) -> np.ndarray:
    return vectors if whitening is None else whitening.transform(vectors)


def _dim(folder: ShardFolder, whitening: Whitening | None) -> int:
    return folder.dim if whitening is None else int(whitening.n_components_)


class ShardedSearcher:
    """One `VectorIndex` (`factory`) per shard; `search` asks every shard for its top-k and keeps the best k of
    the union, which for exact indexes ("Flat") is the top-k of one index over every vector (ties aside).

    `ids` maps a result row number back to the document id.
    """

    def __init__(self, path: str | Path, factory: str = "Flat", whitening: Whitening | None = None) -> None:
        self.folder = ShardFolder(path)
        self.whitening = whitening
        self.dim = _dim(self.folder, whitening)
        self.indexes: list[VectorIndex] = []
        for shard in self.folder.shards:
            index = VectorIndex(factory, self.dim)
            rows = np.arange(shard.first, shard.first + shard.count, dtype=np.int64)
            index.rebuild(rows, _project(self.folder.vectors(shard), whitening))
            self.indexes.append(index)
        self.ids = self.folder.all_ids()

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row numbers), each (n, k), best first, padded with −inf / −1 (FAISS's convention). `queries`
        are raw vectors (the whitening, if any, is applied here)."""
        check_param("k", "ShardedSearcher.search", isinstance(k, int) and k >= 1, "an int >= 1", k)
        projected = _project(np.asarray(queries, dtype=np.float32), self.whitening)
        parts = [index.search(projected, k) for index in self.indexes]
        scores = np.concatenate([p[0] for p in parts], axis=1)
        rows = np.concatenate([p[1] for p in parts], axis=1)
        # Best score first; equal scores by row number, so the merge does not depend on the shard order.
        order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores), axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, order, axis=1)
        top_rows = np.take_along_axis(rows, order, axis=1)
        if top_scores.shape[1] < k:  # fewer candidates than k in all shards together
            pad = k - top_scores.shape[1]
            top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            top_rows = np.pad(top_rows, ((0, 0), (0, pad)), constant_values=-1)
        return top_scores.astype(np.float32), top_rows


def build_index_from_shards(
    path: str | Path,
    factory: str,
    whitening: Whitening | None = None,
    train_size: int | None = None,
    seed: int = 0,
) -> VectorIndex:
    """One IVF `VectorIndex` over every shard: the quantizer (and PQ codebooks) are trained once, on `train_size`
    rows sampled from all shards (default: every row, which trains exactly what `VectorIndex.rebuild` trains over the
    same vectors); then each shard is added to its own copy of the trained empty index and the copies are merged with
    ``IndexIVF.merge_from`` (the inverted lists are concatenated; nothing is re-encoded)."""
    folder = ShardFolder(path)
    dim = _dim(folder, whitening)
    result = VectorIndex(factory, dim)
    if result.ivf_nlist == 0:
        raise InvalidParameterError(
            f"build_index_from_shards merges IVF indexes; {factory!r} is not one (use ShardedSearcher for it)"
        )
    if folder.count < result.ivf_nlist:
        raise InvalidParameterError(f"{folder.count} vectors are too few to train {factory!r}")
    if train_size is None or train_size >= folder.count:
        train = np.concatenate([_project(folder.vectors(s), whitening) for s in folder.shards])
    else:
        rows = np.sort(np.random.default_rng(seed).choice(folder.count, train_size, replace=False))
        parts = []
        for shard in folder.shards:
            mine = rows[(rows >= shard.first) & (rows < shard.first + shard.count)] - shard.first
            if len(mine):
                parts.append(_project(np.asarray(folder.vectors(shard, mmap=True)[mine]), whitening))
        train = np.concatenate(parts)
    trained = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    trained.train(normalize_rows(train))
    del train
    merged = None
    for shard in folder.shards:
        part = faiss.clone_index(trained)
        rows = np.arange(shard.first, shard.first + shard.count, dtype=np.int64)
        part.add_with_ids(normalize_rows(_project(folder.vectors(shard), whitening)), rows)
        if merged is None:
            merged = part
        else:
            faiss.extract_index_ivf(merged).merge_from(faiss.extract_index_ivf(part), 0)
            merged.ntotal = faiss.extract_index_ivf(merged).ntotal  # a wrapper (OPQ's pre-transform) counts apart
    assert merged is not None
    # VectorIndex sets nprobe at search time only on a bare IVF; behind a pre-transform (OPQ) it cannot reach it, so
    # the merged index carries its nprobe (serialised with it).
    faiss.extract_index_ivf(merged).nprobe = min(result.nprobe, result.ivf_nlist)
    result.load_bytes(faiss.serialize_index(merged).tobytes())
    logger.info("merged %d shard indexes into %s over %d vectors", len(folder.shards), factory, result.ntotal)
    return result
