"""Scale-out on Ray (an existing engine, not a scheduler of our own): encode texts into vector shards with Ray Data
`map_batches` over an actor pool (one `Encoder` per actor), merge the shards' exact whitening statistics on the
driver, and search the shards (a fan-out searcher, or one IVF index merged from per-shard indexes).

Needs the ``ray`` extra: ``pip install 'semspace[ray]'``. The shard folder format is in :mod:`.shards`.
"""

# ruff: noqa: E402  (the submodules are imported after the check that Ray is installed)
from __future__ import annotations

from semspace._deps import require

# Checked before the submodules import Ray, so a missing extra is one MissingExtraError naming the install.
for _module in ("ray", "ray.data"):
    require(_module, "ray", "semspace.distributed")

from semspace.distributed.encode import EncodeReport, encode_to_shards, encode_vectors
from semspace.distributed.index import ShardedSearcher, build_index_from_shards
from semspace.distributed.runtime import ray_session
from semspace.distributed.shards import ShardFolder, fit_whitening_from_shards
from semspace.distributed.tasks import add_documents

__all__ = [
    "EncodeReport",
    "ShardFolder",
    "ShardedSearcher",
    "add_documents",
    "build_index_from_shards",
    "encode_to_shards",
    "encode_vectors",
    "fit_whitening_from_shards",
    "ray_session",
]
