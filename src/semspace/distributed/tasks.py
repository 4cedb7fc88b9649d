"""Whole jobs the CLI runs: add documents to a collection with the encoding done on Ray."""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from semspace.distributed.encode import EncodeReport, encode_to_shards
from semspace.distributed.shards import ShardFolder
from semspace.errors import DuplicateIdError
from semspace.search import Collection

logger = logging.getLogger(__name__)


def add_documents(
    collection: Collection,
    texts: Sequence[str],
    ids: Sequence[str] | None = None,
    metadata: Sequence[dict] | None = None,
    n_actors: int = 1,
    shard_size: int = 4096,
    workdir: str | Path | None = None,
) -> tuple[list[str], EncodeReport]:
    """`Collection.add` with the texts encoded on Ray by actors that load the collection's encoder (model,
    pooling, max_length from its manifest), so the stored vectors are those `add` would compute itself. The shards
    go to a temporary folder under `workdir` (on a cluster: a folder every node can write); the documents are
    stored in one transaction as `add` stores them. Returns the ids and the encode report."""
    ids = [uuid.uuid4().hex for _ in texts] if ids is None else list(ids)
    taken = collection.get_existing(ids)
    if taken:  # before the encoding, not after it
        names = ", ".join(repr(doc["id"]) for doc in taken[:5])
        raise DuplicateIdError(f"Id(s) already in the collection: {names}; delete them first to update.")
    spec = dict(collection.manifest["encoder"])
    encoder = {"model": spec["model"], "pooling": spec["pooling"], "max_length": spec["max_length"]}
    tmp = Path(tempfile.mkdtemp(prefix="semspace-add-", dir=workdir))
    try:
        report = encode_to_shards(
            texts, tmp / "shards", ids=ids, encoder=encoder, n_actors=n_actors, shard_size=shard_size
        )
        vectors = ShardFolder(tmp / "shards").all_vectors()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return collection.add(texts, ids=ids, metadata=metadata, vectors=vectors), report
