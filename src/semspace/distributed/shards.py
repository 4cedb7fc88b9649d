"""A folder of vector shards: what a distributed encode writes and what whitening and indexing read.

Layout::

    shards.json                  manifest: count, dim, encoder cache key, the shards (name, first row, count)
    shard-00000.vectors.npy      float32 (n, d), rows in input order
    shard-00000.ids.npy          the ids as a unicode array (no pickle)
    shard-00000.stats.npz        WhiteningStats sums of the shard (count, Σx, Σxxᵀ in float64)

Shard `i` holds input rows ``[first, first + count)``; every file is written atomically and named by its shard
number alone, so a retried shard rewrites the same files and the folder holds every row exactly once. The manifest
is written last: a folder without it is an unfinished job.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semspace._io import atomic_write_bytes, atomic_write_npz, read_artifact_json, read_artifact_npz
from semspace.errors import ArtifactError
from semspace.transform.stats import WhiteningStats
from semspace.transform.whitening import Whitening

FORMAT = "semspace.vector_shards"
MANIFEST = "shards.json"


def shard_name(number: int) -> str:
    return f"shard-{number:05d}"


def _atomic_write_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def write_shard(folder: Path, number: int, ids: list[str], vectors: np.ndarray) -> WhiteningStats:
    """Write one shard's vectors, ids and whitening statistics (each file atomically); returns the statistics."""
    name = shard_name(number)
    stats = WhiteningStats().update(vectors)
    _atomic_write_npy(folder / f"{name}.vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
    _atomic_write_npy(folder / f"{name}.ids.npy", np.array(ids, dtype=np.str_))
    atomic_write_npz(
        folder / f"{name}.stats.npz", count=np.array(stats.count), sum=stats.sum, sum_outer=stats.sum_outer
    )
    return stats


@dataclass(frozen=True)
class ShardInfo:
    name: str
    first: int
    count: int


class ShardFolder:
    """Read a finished shard folder (its manifest is checked; a missing or short file raises ArtifactError)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = read_artifact_json(self.path / MANIFEST, FORMAT)
        try:
            self.count = int(manifest["count"])
            self.dim = int(manifest["dim"])
            self.encoder = manifest.get("encoder")
            self.shards = [ShardInfo(s["name"], int(s["first"]), int(s["count"])) for s in manifest["shards"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"{self.path / MANIFEST}: corrupt manifest ({type(exc).__name__}: {exc})") from None

    def __len__(self) -> int:
        return self.count

    def _npy(self, shard: ShardInfo, kind: str, mmap: bool = False) -> np.ndarray:
        path = self.path / f"{shard.name}.{kind}.npy"
        try:
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path}: missing or corrupt shard file ({exc})") from None
        if len(array) != shard.count:
            raise ArtifactError(f"{path}: {len(array)} rows, the manifest says {shard.count}")
        return array

    def vectors(self, shard: ShardInfo, mmap: bool = False) -> np.ndarray:
        return self._npy(shard, "vectors", mmap)

    def ids(self, shard: ShardInfo) -> list[str]:
        return self._npy(shard, "ids").tolist()

    def stats(self, shard: ShardInfo) -> WhiteningStats:
        arrays = read_artifact_npz(self.path / f"{shard.name}.stats.npz", ("count", "sum", "sum_outer"), "shard stats")
        stats = WhiteningStats()
        stats.count, stats.sum, stats.sum_outer = int(arrays["count"]), arrays["sum"], arrays["sum_outer"]
        return stats

    def iter_shards(self) -> Iterator[tuple[ShardInfo, list[str], np.ndarray]]:
        """(shard, ids, vectors) in input order."""
        for shard in self.shards:
            yield shard, self.ids(shard), self.vectors(shard)

    def all_ids(self) -> list[str]:
        return [i for shard in self.shards for i in self.ids(shard)]

    def all_vectors(self) -> np.ndarray:
        """Every vector in input order (float32 (count, dim)): for folders that fit in memory."""
        if not self.shards:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate([self.vectors(shard) for shard in self.shards])

    def merged_stats(self) -> WhiteningStats:
        """The shards' statistics merged (exact float64 sums: equal to one pass over every vector, up to the
        order of the additions)."""
        total = WhiteningStats(self.dim)
        for shard in self.shards:
            total.merge(self.stats(shard))
        return total


def fit_whitening_from_shards(
    path: str | Path, n_components: int | None = None, beta: float = 1.0, gamma: float = 1.0
) -> Whitening:
    """Whitening (Su et al. 2021, "Whitening Sentence Representations", with the β/γ generalisation of
    `semspace.transform.Whitening`) fitted from the merged per-shard statistics, without loading a vector."""
    return Whitening(n_components=n_components, beta=beta, gamma=gamma).fit_stats(ShardFolder(path).merged_stats())
