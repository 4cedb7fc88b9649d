"""`semspace serve`: the HTTP service (embed, similarity, search, documents) on a collection or an encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.options import note


def serve(
    collection: Annotated[
        Path | None, typer.Argument(help="Collection folder (none: only /embed, /similarity).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[str | None, typer.Option(help="Encoder when no collection is given.")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 256,
) -> None:
    """HTTP service: POST /embed /similarity /search /documents, DELETE /documents, GET /health, page at /."""
    import uvicorn

    from semspace.search import Collection
    from semspace.service import Limits, create_app

    if collection is not None:
        Collection.open(collection).close()  # fail now, with one line, if it is not a collection
    app = create_app(collection, encoder=model, limits=Limits(max_batch=max_batch))
    note(f"serving on http://{host}:{port}/  (OpenAPI: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
