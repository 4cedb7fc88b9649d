"""On-disk embedding cache keyed by model + pooling + max_length + text hash, so tables re-make without re-encoding."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from semspace._io import atomic_write_npz
from semspace.encode.encoder import Encoder
from semspace.encode.pooling import Pooling
from semspace.errors import ArtifactError

logger = logging.getLogger(__name__)


def _text_hash(text: str) -> str:
    # Hex, not raw bytes: numpy's fixed-width bytes dtype strips trailing NULs and would corrupt keys.
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class EmbeddingCache:
    """A folder of ``<key-hash>.npz`` files (text hashes + float32 vectors); one file per encoder setting."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _file(self, key: str) -> Path:
        return self.directory / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()[:20]}.npz"

    def _load(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        path = self._file(key)
        if not path.exists():
            return np.zeros(0, dtype="<U32"), np.zeros((0, 0), dtype=np.float32)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    raise ArtifactError(f"{path}: cache file holds key {data['key']!s}, expected {key}")
                return data["hashes"], data["vectors"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"{path}: corrupt embedding cache file ({exc}); delete it to re-encode") from None

    def encode(
        self,
        encoder: Encoder,
        texts: Sequence[str],
        poolings: Sequence[str | Pooling] | None = None,
        show_progress_bar: bool | None = None,
    ) -> dict[Pooling, np.ndarray]:
        """Vectors for `texts` per pooling; only texts missing from the cache are encoded (once, all poolings)."""
        texts = list(texts)
        wanted = [encoder.resolve_pooling(p) for p in (poolings or [encoder.pooling])]
        hashes = [_text_hash(t) for t in texts]
        stores = {p: self._load(encoder.cache_key(p)) for p in wanted}
        lookups = {p: {h: i for i, h in enumerate(stored[0].tolist())} for p, stored in stores.items()}
        missing: dict[str, str] = {}
        for h, t in zip(hashes, texts, strict=True):
            if any(h not in lookups[p] for p in wanted):
                missing.setdefault(h, t)
        if missing:
            logger.info("Encoding %d texts not in the cache (%s)", len(missing), encoder.model_id)
            fresh = encoder.encode_poolings(list(missing.values()), wanted, show_progress_bar=show_progress_bar)
            new_hashes = np.array(list(missing.keys()), dtype="<U32")
            for p in wanted:
                old_hashes, old_vectors = stores[p]
                if old_vectors.size == 0:
                    old_vectors = old_vectors.reshape(0, encoder.dim)
                all_hashes = np.concatenate([old_hashes, new_hashes])
                all_vectors = np.concatenate([old_vectors, fresh[p]])
                atomic_write_npz(
                    self._file(encoder.cache_key(p)),
                    key=np.array(encoder.cache_key(p)),
                    hashes=all_hashes,
                    vectors=all_vectors,
                )
                stores[p] = (all_hashes, all_vectors)
                lookups[p] = {h: i for i, h in enumerate(all_hashes.tolist())}
        return {p: stores[p][1][[lookups[p][h] for h in hashes]].reshape(len(texts), encoder.dim) for p in wanted}
