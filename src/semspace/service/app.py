"""The service's app factory: `create_app` builds a FastAPI app; its `lifespan` loads the models once.

The encoder, the collection, its CUR searcher and the /rerank cross-encoder are loaded when the app starts and kept
in `app.state`; routes get them through the dependencies in :mod:`semspace.service.deps`, which a test can replace
with `app.dependency_overrides`. Writes are serialised by the collection's lock; bad input is a 4xx with a JSON body
(:mod:`semspace.service.errors`). Middlewares, outermost first: metrics, allowed Host names, API key, body limit.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from semspace._version import __version__
from semspace.encode import Encoder
from semspace.errors import check_param
from semspace.interact.cross_encoder import CrossEncoder
from semspace.search import Collection
from semspace.search.catalog import Catalog, EncoderPool
from semspace.search.collection import MANIFEST
from semspace.service.batcher import BatchConfig
from semspace.service.deps import ServiceState
from semspace.service.errors import ERROR_STATUS, HANDLERS, is_openai
from semspace.service.metrics import MetricsMiddleware, ServiceMetrics
from semspace.service.routes import ROUTERS
from semspace.service.schemas import ERROR_DESCRIPTIONS, ErrorDetail, Limits, OpenAIError, describe_limits
from semspace.service.security import (
    OPEN_ROUTES,
    APIKeyAuth,
    BodySizeLimit,
    TrustedHosts,
    default_allowed_hosts,
)

__all__ = ["ERROR_STATUS", "BodySizeLimit", "Limits", "ServiceState", "create_app", "lifespan"]


@dataclass(frozen=True)
class ServiceConfig:
    """What `create_app` was given; the lifespan turns it into a :class:`ServiceState`."""

    collection: str | os.PathLike | Collection | Catalog | None
    encoder: Encoder | str | os.PathLike | None
    limits: Limits
    cross_encoder: str | os.PathLike | CrossEncoder | None = None
    backend: str | None = None  # the engine of the encoder and cross-encoder the service loads (None: as given)
    batching: BatchConfig | None = None
    strict_model: bool = False


def load_state(config: ServiceConfig, metrics: ServiceMetrics | None = None) -> ServiceState:
    """Open what the service serves and load its models once.

    `config.collection`: a collection folder or object (served at the top-level routes and as
    /collections/{its folder name}), a folder of collections or a :class:`Catalog` (served under /collections), or
    None. The encoder of /embed and /v1: the one given, else the single collection's, else `Encoder(spec)`; every
    collection of the same spec shares it (:class:`EncoderPool`). `<collection>/cur` holding a CUR searcher is loaded
    with it; the /rerank cross-encoder is the one given, else the CUR searcher's."""
    served = config.collection
    pool = served.encoders if isinstance(served, Catalog) else EncoderPool(config.backend)
    given = config.encoder
    encoder = given if isinstance(given, Encoder) or given is None else Encoder(given)
    catalog, coll = _open_served(config.collection, pool, encoder)
    if encoder is None:
        encoder = coll.encoder if coll is not None else Encoder()
    if config.backend is not None:
        encoder.use_backend(config.backend)
    pool.add(encoder)
    cur = None
    if coll is not None and (coll.path / "cur" / "cur.json").exists():
        from semspace.interact.searcher import CURSearcher

        cur = CURSearcher.load(coll.path / "cur", encoder=coll.encoder)  # the encoder of the collection's vectors
    cross = _cross_encoder(config, cur)
    state = ServiceState(encoder, coll, config.limits, cur, cross, catalog=catalog, encoders=pool)
    state.batching, state.metrics = config.batching, metrics
    state.strict_model = config.strict_model
    if config.batching is not None and config.batching.max_wait_ms >= 0:
        state.batcher = state.make_batcher(encoder, config.batching)
    return state


def _open_served(
    spec: str | os.PathLike | Collection | Catalog | None, pool: EncoderPool, encoder: Encoder | None
) -> tuple[Catalog | None, Collection | None]:
    """(catalog, single collection) of what the service serves; a folder without collection.json is a catalog. A
    single collection opened here uses the service's encoder when one was given (as `serve --model` asks)."""
    if spec is None or isinstance(spec, Collection):
        return None, spec
    if isinstance(spec, Catalog):
        return spec, None
    if (Path(spec) / MANIFEST).is_file():
        return None, Collection.open(spec, encoder=encoder, encoder_loader=pool.get)
    return Catalog(spec, encoders=pool), None  # new collections use the service's encoder unless they name one


def _cross_encoder(config: ServiceConfig, cur) -> CrossEncoder | None:
    given = config.cross_encoder
    if given is None:
        cross = cur.cross_encoder if cur is not None else None
    else:
        cross = given if isinstance(given, CrossEncoder) else CrossEncoder(given)
    if config.backend is not None and cross is not None and config.backend != cross.backend:
        from semspace.encode.engine import use_engine

        use_engine(cross, config.backend)
    return cross


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the state once when the app starts; close the collection at shutdown if this app opened it."""
    config: ServiceConfig = app.state.config
    state = load_state(config, app.state.metrics)
    app.state.semspace = state
    try:
        yield
    finally:
        state.close()
        del app.state.semspace
        if state.collection is not None and isinstance(config.collection, str | os.PathLike):
            state.collection.close()


def create_app(
    collection: str | Path | Collection | Catalog | None = None,
    encoder: Encoder | str | None = None,
    limits: Limits | None = None,
    *,
    cross_encoder: str | Path | CrossEncoder | None = None,
    api_key: str | None = None,
    allowed_hosts: Sequence[str] | None = None,
    host: str | None = None,
    backend: str | None = None,
    batching: BatchConfig | None = None,
    strict_model: bool = False,
) -> FastAPI:
    """The app over a collection folder (or object), a folder of collections (or :class:`Catalog`), or none.

    A collection is served at /search, /documents and /collections/{its folder name}/…; a folder of collections
    under /collections (create, list, drop; /collections/{name}/search, …/documents). Without either, the
    collection routes are 404s.

    cross_encoder: a folder or :class:`CrossEncoder` for /rerank (default: the collection's CUR searcher's, if any).
    api_key: when set, every route but /health and the page at / needs `Authorization: Bearer <api_key>` (a 401).
    allowed_hosts: Host header names accepted (default: localhost, 127.0.0.1, ::1 and `host`, the address the
    server is bound to; `["*"]` accepts any — only behind a proxy that checks it).
    backend: the engine of the encoder and cross-encoder (torch, torch-bf16, onnx, onnx-int8, auto; None: as is).
    batching: dynamic batching of concurrent /embed, /search and /v1/embeddings requests
    (:class:`~semspace.service.batcher.BatchConfig`; default on, a few ms; ``BatchConfig(max_wait_ms=-1)`` is off).
    strict_model: /v1/embeddings answers a `model` that is neither the served model's id nor one of its names with
    a 404 naming the served one (default: any `model` answers, as TEI ignores it; a request without `model` is
    answered either way).

    Nothing is loaded here: the lifespan loads what is served when the app starts. Each call builds an independent
    app (own state, `dependency_overrides`, metrics registry).
    """
    limits = limits or Limits()
    check_param(
        "api_key",
        "create_app",
        api_key is None or (isinstance(api_key, str) and api_key),
        "None or a non-empty str",
        api_key,
    )
    hosts = list(allowed_hosts) if allowed_hosts is not None else default_allowed_hosts(host)
    app = FastAPI(
        title="semspace",
        version=__version__,
        lifespan=lifespan,
        description=(
            "Embeddings, similarity, reranking and semantic search over a semspace collection; OpenAI-compatible "
            "`/v1/embeddings` and `/v1/models`, TEI-compatible `/embed` (`inputs`), `/rerank` and `/info`."
        ),
        docs_url=None,  # /docs is served offline by routes/meta.py
        redoc_url=None,
    )
    app.state.config = ServiceConfig(
        collection,
        encoder,
        limits,
        cross_encoder,
        backend,
        batching if batching is not None else BatchConfig(),
        strict_model=strict_model,
    )
    app.state.metrics = metrics = ServiceMetrics()
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    if api_key is not None:
        app.add_middleware(APIKeyAuth, api_key=api_key)
    app.add_middleware(TrustedHosts, allowed_hosts=hosts)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for kind, handler in HANDLERS:
        app.add_exception_handler(kind, handler)
    for router, prefix in ROUTERS:
        app.include_router(router, prefix=prefix)

    install_openapi(app, limits, secured=api_key is not None, strict_model=strict_model)
    return app


# `semspace serve --workers N`: the environment variable that hands each worker process what to serve (JSON)
WORKER_SPEC = "SEMSPACE_SERVE_SPEC"


def app_from_spec(spec: dict[str, Any]) -> FastAPI:
    """`create_app` from `semspace serve`'s options as plain JSON values (`max_batch` for the limits,
    `batch_wait_ms` for the batcher)."""
    spec = dict(spec)
    wait = spec.pop("batch_wait_ms", None)
    batching = BatchConfig() if wait is None else BatchConfig(max_wait_ms=wait)
    limits = Limits(max_batch=spec.pop("max_batch"))
    return create_app(limits=limits, batching=batching, **spec)


def app_from_env() -> FastAPI:
    """The app of one worker process of `semspace serve --workers N` (uvicorn imports this factory in each)."""
    return app_from_spec(json.loads(os.environ[WORKER_SPEC]))


def install_openapi(app: FastAPI, limits: Limits, *, secured: bool, strict_model: bool) -> None:
    """Make `app.openapi` the schema :func:`document` patches with the limits, the key and what is served."""

    def openapi() -> dict[str, Any]:
        # the /v1 `model` and `dimensions` allowed depend on the loaded encoder and collection: known once started
        if app.openapi_schema is None:
            state = getattr(app.state, "semspace", None)
            served = None
            if state is not None:
                k = getattr(getattr(state.collection, "transform", None), "n_components_", None)
                served = (str(state.encoder.model_id), int(state.encoder.dim), None if k is None else int(k))
            schema = document(FastAPI.openapi(app), limits, secured=secured, served=served, strict_model=strict_model)
            app.openapi_schema = None  # FastAPI.openapi caches its own result there
            if state is None:
                return schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(
    schema: dict[str, Any],
    limits: Limits,
    secured: bool,
    served: tuple[str, int, int | None] | None = None,
    strict_model: bool = False,
) -> dict[str, Any]:
    """The OpenAPI schema plus what the middlewares answer on every route (bad Host 400, body 413, and 401 with an
    API key) and the limits in force (maxItems, maxLength, maximum)."""
    schema = copy.deepcopy(schema)
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorDetail, OpenAIError):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in body.pop("$defs", {}).items():
            comps.setdefault(name, sub)
        comps.setdefault(model.__name__, body)
    if secured:
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in schema.get("paths", {}).items():
        model = "OpenAIError" if is_openai(path) else "ErrorDetail"
        codes = [400] + ([413] if operations.keys() & {"post", "put", "delete", "patch"} else [])
        for method, operation in operations.items():
            keyed = secured and (method.upper(), path) not in OPEN_ROUTES
            responses = operation.setdefault("responses", {})
            for code in codes + ([401] if keyed else []):
                responses.setdefault(
                    str(code),
                    {
                        "description": ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
                    },
                )
            if keyed:
                operation["security"] = [{"bearer": []}]
    return describe_limits(schema, limits, served, strict_model=strict_model)
