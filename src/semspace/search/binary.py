"""Binary quantization of a collection's vectors: FAISS's IndexBinaryFlat over their sign bits (factory "BFlat",
Hamming distance), as sentence-transformers' ``quantize_embeddings(..., "ubinary")`` + ``semantic_search_faiss``
make it, with their rescoring step.

Each vector keeps one bit per dimension (32x smaller than float32). A query is answered in two steps, as the
sentence-transformers quantization guide describes (after Yamada et al., 2021, "Efficient Passage Retrieval with
Hashing for Open-domain Question Answering"; https://sbert.net/examples/sentence_transformer/applications/
embedding-quantization/README.html): the `rescore_multiplier` × k nearest codes by Hamming distance, then those
candidates ordered by the float query's dot product with their ±1 codes. Scores are cosines: of the query with the
candidate's sign vector after rescoring, of the two sign vectors (1 − 2·hamming/d) without.
"""

from __future__ import annotations

import numpy as np

from semspace.errors import InvalidParameterError
from semspace.search.index import VectorIndex, _faiss, normalize_rows

BINARY_FACTORIES = ("BFlat",)
RESCORE_MULTIPLIER = 4  # candidates fetched per result before rescoring (sentence-transformers' examples use 4)


def binarize(x: np.ndarray, bits: int) -> np.ndarray:
    """The sign bits of each row (x > 0, sentence-transformers' rule), packed 8 per byte, padded with 0 bits to
    `bits` (a multiple of 8: FAISS's binary codes are whole bytes; a constant pad bit changes no distance)."""
    signs = np.asarray(x, dtype=np.float32) > 0
    if bits > signs.shape[1]:
        signs = np.hstack([signs, np.zeros((len(signs), bits - signs.shape[1]), dtype=bool)])
    return np.ascontiguousarray(np.packbits(signs, axis=1))


class BinaryVectorIndex(VectorIndex):
    """A :class:`VectorIndex` over sign bits (`VectorIndex("BFlat", d)` makes one). Adds, removes, tombstones, id
    selectors and persistence behave as for a float index; `rescore_multiplier` ≤ 1 turns rescoring off."""

    def __init__(self, factory: str, dim: int) -> None:
        faiss = _faiss()
        if factory not in BINARY_FACTORIES:
            raise InvalidParameterError(
                f"Binary FAISS factory {factory!r} is not supported; use {', '.join(BINARY_FACTORIES)} "
                "(precision='binary')."
            )
        self.factory = factory
        self.dim = dim
        self.bits = -(-dim // 8) * 8
        self.ivf_nlist = 0
        self.needs_training = False
        self.min_train = 0
        self.supports_remove = True
        self.nprobe = 32
        self.ef_search = 128
        self.rescore_multiplier = RESCORE_MULTIPLIER
        self._index = faiss.IndexBinaryIDMap2(faiss.index_binary_factory(self.bits, factory))
        self._dead = np.zeros(0, np.int64)
        self._dead_selector = None

    def _inner(self):
        return _faiss().downcast_IndexBinary(self._index.index)

    def rebuild(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        faiss = _faiss()
        self._index = faiss.IndexBinaryIDMap2(faiss.index_binary_factory(self.bits, self.factory))
        self._dead = np.zeros(0, np.int64)
        self._dead_selector = None
        if len(vectors):
            self.add(seqs, vectors)

    def add(self, seqs: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(binarize(vectors, self.bits), np.asarray(seqs, dtype=np.int64))

    def _params(self, k: int, selector=None):
        return _faiss().SearchParameters(sel=selector) if selector is not None else None

    def _search(self, queries: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
        q = normalize_rows(queries)
        rescore = self.rescore_multiplier > 1
        fetch = max(k, min(k * self.rescore_multiplier, self.physical_total)) if rescore else k
        codes = binarize(q, self.bits)
        params = self._params(fetch, selector)
        if params is None:
            distances, ids = self._index.search(codes, fetch)
        else:
            distances, ids = self._index.search(codes, fetch, params=params)
        if not rescore:
            scores = np.where(ids < 0, -np.inf, 1.0 - 2.0 * distances / self.dim).astype(np.float32)
            return scores, ids
        return self._rescore(q, ids, k)

    def _rescore(self, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The candidates `ids` ordered by the float query's cosine with their ±1 codes; the best k."""
        found = np.unique(ids[ids >= 0])
        signs = np.zeros((len(found), self.dim), np.float32)
        if len(found):
            packed = np.stack([self._index.reconstruct(int(i)) for i in found])
            signs = np.unpackbits(packed, axis=1)[:, : self.dim].astype(np.float32) * 2.0 - 1.0
        rows = np.searchsorted(found, np.where(ids >= 0, ids, found[0] if len(found) else 0))
        scores = np.einsum("qd,qcd->qc", q, signs[rows]) / np.sqrt(self.dim) if len(found) else ids * 0.0
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)

    def reconstruct(self, seqs: np.ndarray) -> np.ndarray | None:
        return None  # only sign bits are kept: a filtered search scores the stored float vectors instead

    def to_bytes(self) -> bytes:
        return _faiss().serialize_index_binary(self._index).tobytes()

    def _faiss_io(self) -> tuple:
        faiss = _faiss()
        return faiss.write_index_binary, faiss.read_index_binary, faiss.deserialize_index_binary
