"""`semspace serve`: the HTTP service (embed, similarity, search, documents) on a collection or an encoder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from semspace._deps import require
from semspace.cli.options import BackendName, note


def serve(
    collection: Annotated[
        Path | None,
        typer.Argument(
            help="A collection folder, or a folder of collections (made if missing; served under /collections). "
            "None: only /embed, /similarity, /v1/embeddings."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[
        str | None,
        typer.Option(help="Encoder of /embed and /v1 (and of new collections) when no single collection is given."),
    ] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 256,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="SEMSPACE_API_KEY",
            help="Require 'Authorization: Bearer KEY' on every route but GET /health and the search page GET / "
            "(which asks for the key).",
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Host header to accept (repeatable; default: localhost, 127.0.0.1, ::1 and --host; '*' = any).",
        ),
    ] = None,
    cross_encoder: Annotated[
        Path | None,
        typer.Option("--cross-encoder", help="Cross-encoder folder for /rerank (default: the collection's CUR one)."),
    ] = None,
    backend: BackendName = None,
    strict_model: Annotated[
        bool,
        typer.Option(
            "--strict-model",
            help="/v1/embeddings answers a 'model' other than the served one (or its names in /v1/models) with a "
            "404 (default: any 'model' answers, as TEI ignores it).",
        ),
    ] = False,
) -> None:
    """HTTP service: /embed /similarity /search /documents /collections /rerank /info /metrics /health,
    OpenAI-compatible /v1/embeddings and /v1/models, a search page at / and the OpenAPI docs at /docs."""
    for package in ("fastapi", "prometheus_client", "orjson"):
        require(package, "serve", "semspace serve")
    uvicorn = require("uvicorn", "serve", "semspace serve")
    # OpenMP threads that spin after each parallel region take the cores the event loop needs to answer requests;
    # read once when torch loads (below), so set before; a value the user set wins
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from semspace.search import Catalog, Collection
    from semspace.search.collection import MANIFEST
    from semspace.service import Limits, create_app

    # fail now, with one line, if it is neither a collection nor a folder that can hold collections
    if collection is not None and (collection / MANIFEST).is_file():
        Collection.open(collection).close()
    elif collection is not None:
        Catalog(collection).close()
        note(f"serving the collections under {collection} at /collections")
    app = create_app(
        collection,
        encoder=model,
        limits=Limits(max_batch=max_batch),
        cross_encoder=cross_encoder,
        api_key=api_key,
        allowed_hosts=allowed_host or None,
        host=host,
        backend=backend,
        strict_model=strict_model,
    )
    note(f"serving on http://{host}:{port}/  (OpenAPI: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
