"""Options of the commands that can run on Ray (`encode --ray`, `index add --ray`) and `semspace whiten-stats`.

Everything here is a thin call into :mod:`semspace.distributed`, imported only when Ray is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.options import echo_json, note

RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Encode on Ray: 'local' starts a local runtime, 'auto' joins the running cluster, or a cluster address.",
    ),
]
Actors = Annotated[int, typer.Option("--actors", min=1, help="With --ray: encoder actors (one model each).")]
ShardSize = Annotated[int, typer.Option("--shard-size", min=1, help="With --ray: texts per shard (one actor call).")]


def whiten_stats(
    folder: Annotated[Path, typer.Argument(help="Shard folder written by `semspace encode --ray` (shards.json).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Save the fitted Whitening here.")] = None,
    k: Annotated[int | None, typer.Option(help="Output dimensions (default: all).")] = None,
    beta: float = 1.0,
    gamma: float = 1.0,
) -> None:
    """Merge the per-shard whitening statistics of a shard folder (no vector is read) and fit whitening on them."""
    from semspace.distributed import ShardFolder, fit_whitening_from_shards

    shards = ShardFolder(folder)
    whitening = fit_whitening_from_shards(folder, n_components=k, beta=beta, gamma=gamma)
    if output is not None:
        whitening.save(output)
        note(f"wrote the whitening fitted on {shards.count} vectors to {output}")
    echo_json(
        {
            "folder": str(folder),
            "shards": len(shards.shards),
            "count": shards.count,
            "dim": shards.dim,
            "encoder": shards.encoder,
            "whitening": {**whitening.get_params(), "n_features": whitening.n_features_in_},
            "output": None if output is None else str(output),
        },
        indent=2,
    )
