"""FastAPI dependencies: what the routes need, read from `app.state` (filled once by the app's lifespan).

They are coroutines because they only read attributes: FastAPI runs a plain `def` dependency in its thread pool,
a thread hop per dependency per request, which cost more than the work under many small concurrent requests.

Routes receive these through `Depends`, so a test can replace any of them for one app::

    app.dependency_overrides[get_encoder] = lambda: TinyEncoder()
    app.dependency_overrides[get_limits] = lambda: Limits(max_batch=2)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from semspace.encode import Encoder
from semspace.interact.cross_encoder import CrossEncoder
from semspace.interact.searcher import CURSearcher
from semspace.search import Collection
from semspace.service.batcher import Batcher
from semspace.service.metrics import ServiceMetrics
from semspace.service.schemas import Limits, http_error

NO_COLLECTION = "No collection is attached to this service (start it with `semspace serve PATH`)."
NO_CROSS_ENCODER = (
    "No cross-encoder is configured: start the service with `--cross-encoder PATH`, or serve a collection whose "
    "<collection>/cur holds a CUR searcher."
)


@dataclass
class ServiceState:
    """What the lifespan loads once per app: the encoder, the collection (if any), the limits, the CUR searcher."""

    encoder: Encoder
    collection: Collection | None
    limits: Limits
    cur: CURSearcher | None = None  # when <collection>/cur holds a CUR searcher
    cross_encoder: CrossEncoder | None = None  # for /rerank: create_app(cross_encoder=...), else the CUR searcher's
    # a transformers tokenizer is not safe to share between threads (CrossEncoder.tokenize re-configures it on every
    # call), so /rerank calls the cross-encoder one request at a time
    rerank_lock: threading.Lock = field(default_factory=threading.Lock)
    batcher: Batcher | None = None  # gathers concurrent small encode calls into one (service.batcher)


async def get_state(request: Request) -> ServiceState:
    """The app's loaded state (set by :func:`semspace.service.app.lifespan`)."""
    state = getattr(request.app.state, "semspace", None)
    if state is None:
        raise RuntimeError("the service state is loaded by the app's lifespan: run the app (or use `with TestClient`)")
    return state


async def get_encoder(state: Annotated[ServiceState, Depends(get_state)]) -> Encoder:
    """The encoder used for /embed, /similarity, queries and new documents: behind the app's batcher (concurrent
    small `encode` calls gathered into one) when it has one."""
    return state.encoder if state.batcher is None else state.batcher.encoder


async def get_limits(state: Annotated[ServiceState, Depends(get_state)]) -> Limits:
    """The per-request limits (batch size, text length, k)."""
    return state.limits


async def get_collection(state: Annotated[ServiceState, Depends(get_state)]) -> Collection:
    """The collection; a 404 when the service was started without one."""
    if state.collection is None:
        raise http_error(404, NO_COLLECTION)
    return state.collection


async def get_cur(state: Annotated[ServiceState, Depends(get_state)]) -> CURSearcher | None:
    """The collection's CUR searcher, or None when it has none."""
    return state.cur


EncoderDep = Annotated[Encoder, Depends(get_encoder)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
CollectionDep = Annotated[Collection, Depends(get_collection)]
CURDep = Annotated[CURSearcher | None, Depends(get_cur)]


async def get_cross_encoder(state: Annotated[ServiceState, Depends(get_state)]) -> CrossEncoder:
    """The cross-encoder for /rerank; a 404 when none is configured."""
    if state.cross_encoder is None:
        raise http_error(404, NO_CROSS_ENCODER)
    return state.cross_encoder


async def get_metrics(request: Request) -> ServiceMetrics:
    """This app's Prometheus collectors (made by `create_app`, one registry per app)."""
    return request.app.state.metrics


CrossEncoderDep = Annotated[CrossEncoder, Depends(get_cross_encoder)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
StateDep = Annotated[ServiceState, Depends(get_state)]
