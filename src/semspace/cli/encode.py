"""`semspace encode`: texts → sentence vectors (.npy float32, or JSON lines with text and embedding)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.options import BackendName, BatchSize, MaxLength, Model, PoolingName, note


def encode(
    source: Annotated[str, typer.Argument(help="Text file, one text per line, or '-' for stdin.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write: .npy or .jsonl.")],
    model: Model = None,
    pooling: PoolingName = "default",
    batch_size: BatchSize = 64,
    max_length: MaxLength = None,
    normalize: Annotated[bool, typer.Option(help="L2-normalise the vectors.")] = False,
    allow_download: Annotated[bool, typer.Option(help="Allow fetching a hub id not in the local cache.")] = False,
    backend: BackendName = "torch",
) -> None:
    """Encode texts into sentence vectors (.npy float32, or JSON lines with text and embedding)."""
    from semspace.data.files import check_vectors_path, read_lines, write_vectors
    from semspace.encode import Encoder

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
    write_vectors(output, vectors, texts)
    note(
        f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors ({encoder.model_id}, "
        f"{encoder.pooling.value}) to {output}"
    )
