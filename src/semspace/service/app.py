"""The service's app factory: `create_app` builds a FastAPI app; its `lifespan` loads the models once.

The encoder, the collection and its CUR searcher are loaded when the app starts and kept in `app.state`; routes get
them through the dependencies in :mod:`semspace.service.deps`, which a test can replace with
`app.dependency_overrides`. Writes are serialised by the collection's lock; bad input is a 4xx with a JSON `detail`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from semspace._version import __version__
from semspace.encode import Encoder
from semspace.errors import CollectionError, DocumentNotFoundError, DuplicateIdError, SemspaceError
from semspace.search import Collection
from semspace.service.deps import ServiceState
from semspace.service.routes import ROUTERS
from semspace.service.schemas import Limits

__all__ = ["Limits", "ServiceState", "create_app", "lifespan"]

# library errors → HTTP status, first match wins (DuplicateIdError is an InvalidInputError, so it comes first)
ERROR_STATUS: tuple[tuple[type[SemspaceError], int], ...] = (
    (DocumentNotFoundError, 404),
    (DuplicateIdError, 409),
    (CollectionError, 500),
    (SemspaceError, 400),
)


@dataclass(frozen=True)
class ServiceConfig:
    """What `create_app` was given; the lifespan turns it into a :class:`ServiceState`."""

    collection: str | os.PathLike | Collection | None
    encoder: Encoder | str | os.PathLike | None
    limits: Limits


def load_state(config: ServiceConfig) -> ServiceState:
    """Open the collection (if a path), pick the encoder (given, else the collection's, else `Encoder(spec)`), and
    load `<collection>/cur` when it holds a CUR searcher."""
    spec = config.collection
    coll = Collection.open(spec) if isinstance(spec, str | os.PathLike) else spec
    if isinstance(config.encoder, Encoder):
        encoder = config.encoder
    elif coll is not None and config.encoder is None:
        encoder = coll.encoder
    else:
        encoder = Encoder(config.encoder)
    if coll is not None and coll._encoder is None:
        coll._encoder = encoder
    cur = None
    if coll is not None and (coll.path / "cur" / "cur.json").exists():
        from semspace.interact.searcher import CURSearcher

        cur = CURSearcher.load(coll.path / "cur")
    return ServiceState(encoder, coll, config.limits, cur)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the state once when the app starts; close the collection at shutdown if this app opened it."""
    config: ServiceConfig = app.state.config
    state = load_state(config)
    app.state.semspace = state
    try:
        yield
    finally:
        del app.state.semspace
        if state.collection is not None and isinstance(config.collection, str | os.PathLike):
            state.collection.close()


class BodySizeLimit:
    """ASGI middleware: a 413 with a JSON detail when Content-Length is over `max_bytes`, before the body is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                response = JSONResponse(
                    status_code=413, content={"detail": f"Request body over {self.max_bytes} bytes."}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def semspace_error(request: Request, exc: Exception) -> JSONResponse:
    """A library error as `{"detail": message}` with the status from :data:`ERROR_STATUS`."""
    status = next(code for kind, code in ERROR_STATUS if isinstance(exc, kind))
    return JSONResponse(status_code=status, content={"detail": str(exc)})


def create_app(
    collection: str | Path | Collection | None = None,
    encoder: Encoder | str | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """The app over a collection folder (or object) or none (then only /embed, /similarity, /health and / work).

    Nothing is loaded here: the lifespan loads the encoder, the collection and its CUR searcher when the app starts.
    Each call builds an independent app (own state, own `dependency_overrides`).
    """
    limits = limits or Limits()
    app = FastAPI(
        title="semspace",
        version=__version__,
        lifespan=lifespan,
        description="Embeddings, similarity and semantic search over a semspace collection.",
    )
    app.state.config = ServiceConfig(collection, encoder, limits)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_exception_handler(SemspaceError, semspace_error)
    for router in ROUTERS:
        app.include_router(router)
    return app
