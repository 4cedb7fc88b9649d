"""`semspace serve`: the HTTP service (embed, similarity, search, documents) on a collection or an encoder."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from semspace._deps import require
from semspace.cli.options import BackendName, note
from semspace.errors import InvalidParameterError

Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Server processes sharing the port, each with its own encoder (and its own copy of a served "
        "collection's index) and cores ÷ N engine threads ($OMP_NUM_THREADS wins); collections stay consistent "
        "across them (a file lock orders writes, every process reads the others' commits). Default: 2 on 2 or "
        "more cores (32 single-text clients on 2 cores: 1.18× (torch) and 1.16× (onnx-int8) the median requests/s "
        "of one process, docs/results/engine_service.md), else 1.",
        show_default=False,
    ),
]

BatchWaitMs = Annotated[
    float | None,
    typer.Option(
        "--batch-wait-ms",
        help="How long the first of concurrent small /embed, /search and /v1/embeddings requests waits for "
        "others to share its encoder call (dynamic batching; negative: off). Default: 3.",
        show_default=False,
    ),
]


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
    workers: Workers = None,
    batch_wait_ms: BatchWaitMs = None,
) -> None:
    """HTTP service: /embed /similarity /search /documents /collections /rerank /info /metrics /health,
    OpenAI-compatible /v1/embeddings and /v1/models, a search page at / and the OpenAPI docs at /docs."""
    for package in ("fastapi", "prometheus_client", "orjson"):
        require(package, "serve", "semspace serve")
    require("uvicorn", "serve", "semspace serve")
    # OpenMP threads that spin after each parallel region take the cores the event loop needs to answer requests;
    # read once when torch loads (below), so set before; a value the user set wins
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from semspace.search import Catalog, Collection
    from semspace.search.collection import MANIFEST

    # fail now, with one line, if it is neither a collection nor a folder that can hold collections
    if collection is not None and (collection / MANIFEST).is_file():
        Collection.open(collection).close()
    elif collection is not None:
        Catalog(collection).close()
        note(f"serving the collections under {collection} at /collections")
    spec = {
        "collection": None if collection is None else str(collection),
        "encoder": model,
        "max_batch": max_batch,
        "cross_encoder": None if cross_encoder is None else str(cross_encoder),
        "api_key": api_key,
        "allowed_hosts": allowed_host or None,
        "host": host,
        "backend": backend,
        "strict_model": strict_model,
        "batch_wait_ms": batch_wait_ms,
    }
    start_server(spec, workers, host, port)


def start_server(spec: dict, workers: int | None, host: str, port: int) -> None:
    """Serve `spec` (`app_from_spec`'s options) from one process, or from `workers` processes (default:
    :func:`default_workers`)."""
    from semspace.service.app import app_from_spec
    from semspace.service.workers import UVICORN_OPTIONS

    uvicorn = require("uvicorn", "serve", "semspace serve")
    collection = spec["collection"]
    workers = default_workers(collection is not None) if workers is None else workers
    if workers > 1 and collection is not None and not cross_process_lock():
        raise InvalidParameterError(
            f"--workers {workers} with a collection needs a cross-process file lock (fcntl), which this platform "
            "lacks: serve it with --workers 1."
        )
    note(f"serving on http://{host}:{port}/  (OpenAPI: /docs)" + (f" with {workers} workers" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(app_from_spec(spec), host=host, port=port, **UVICORN_OPTIONS)
        return
    from semspace.service.workers import serve_workers

    code = serve_workers(spec, workers, host, port)
    if code:
        sys.exit(code)


def default_workers(serves_collections: bool) -> int:
    """2 processes on 2 or more cores: single-text requests gathered into small batches scale better over processes
    than over intra-op threads; more copies than that multiply the memory of the model and of a served index. 1
    where collections are served without a cross-process lock."""
    from semspace.encode.engine import physical_cores

    return 1 if serves_collections and not cross_process_lock() else min(2, physical_cores())


def cross_process_lock() -> bool:
    """Whether processes can share a collection here: its writer lock is `fcntl.flock` (POSIX only)."""
    from semspace.search import locking

    return locking.fcntl is not None
