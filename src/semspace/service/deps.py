"""FastAPI dependencies: what the routes need, read from `app.state` (filled once by the app's lifespan).

They are coroutines because they only read attributes: FastAPI runs a plain `def` dependency in its thread pool,
a thread hop per dependency per request, which cost more than the work under many small concurrent requests. The
one exception, `get_named_target`, may open a collection and load its encoder, which must not block the event loop.

A collection route works on a :class:`Target` (collection, encoder, CUR searcher): the server's single collection
(`get_target`) or the one /collections/{collection}/… names (`get_named_target`).

Routes receive these through `Depends`, so a test can replace any of them for one app::

    app.dependency_overrides[get_encoder] = lambda: TinyEncoder()
    app.dependency_overrides[get_limits] = lambda: Limits(max_batch=2)
    app.dependency_overrides[get_target] = lambda: Target(collection, encoder, None)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request

from semspace.encode import Encoder
from semspace.errors import CollectionNotFoundError
from semspace.interact.cross_encoder import CrossEncoder
from semspace.interact.searcher import CURSearcher
from semspace.search import Collection
from semspace.search.catalog import NAME_PATTERN, Catalog, EncoderPool, check_name, spec_key
from semspace.service.batcher import BatchConfig, Batcher
from semspace.service.metrics import ServiceMetrics
from semspace.service.schemas import Limits, http_error

NO_COLLECTION = "No collection is attached to this service (start it with `semspace serve PATH`)."
NO_DEFAULT = (
    "This server serves a folder of collections: use /collections/{name}/documents, /collections/{name}/search "
    "(GET /collections lists them)."
)
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
    catalog: Catalog | None = None  # `semspace serve DIR` on a folder of collections
    encoders: EncoderPool = field(default_factory=EncoderPool)  # one encoder per spec, shared by collections
    batching: BatchConfig | None = None
    strict_model: bool = False  # /v1/embeddings refuses a `model` not served (create_app(strict_model=True))
    batchers: dict[str, Batcher] = field(default_factory=dict)  # one per encoder spec, made on first use
    curs: dict[str, CURSearcher | None] = field(default_factory=dict)  # a named collection's CUR searcher (if any)
    metrics: ServiceMetrics | None = None  # the app's collectors: every batcher reports its encode calls there
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def batched(self, encoder: Encoder) -> Encoder:
        """`encoder` behind its batcher (made on first use; one per encoder spec), or itself without batching."""
        if self.batcher is not None and encoder is self.encoder:
            return self.batcher.encoder
        if self.batching is None or self.batching.max_wait_ms < 0:
            return encoder
        key = spec_key(encoder.spec)  # the pool holds one encoder per spec, so one batcher per spec
        with self._guard:
            batcher = self.batchers.get(key)
            if batcher is None:
                batcher = self.batchers[key] = self.make_batcher(encoder, self.batching)
        return batcher.encoder

    def make_batcher(self, encoder: Encoder, config: BatchConfig) -> Batcher:
        """A batcher for `encoder` whose encode calls are counted in the app's metrics."""
        return Batcher(encoder, config, None if self.metrics is None else self.metrics.gathered.observe)

    def named(self, name: str) -> Collection:
        """The served collection `name`: from the catalog, or the single collection when its folder has that name."""
        check_name(name)
        if self.catalog is not None:
            return self.catalog.get_collection(name)
        if self.collection is not None and self.collection.path.name == name:
            return self.collection
        raise CollectionNotFoundError(f"No collection named {name!r}.")

    def summaries(self) -> list[dict]:
        """Name, count, encoder, index and dim of each served collection (without loading the indexes)."""
        if self.catalog is not None:
            return self.catalog.describe_collections()
        return [] if self.collection is None else [self.collection.info()]

    def cur_of(self, collection: Collection) -> CURSearcher | None:
        """The collection's CUR searcher (`<collection>/cur`), loaded once; None when it has none."""
        if collection is self.collection:
            return self.cur
        key = str(collection.path)
        with self._guard:
            if key not in self.curs:
                self.curs[key] = None
                if (collection.path / "cur" / "cur.json").exists():
                    self.curs[key] = CURSearcher.load(collection.path / "cur", encoder=collection.encoder)
            return self.curs[key]

    def close(self) -> None:
        for batcher in [self.batcher, *self.batchers.values()]:
            if batcher is not None:
                batcher.close()
        if self.catalog is not None:
            self.catalog.close()


@dataclass(frozen=True)
class Target:
    """What a collection route works on: the collection, the encoder of its vectors (behind the batcher) and its
    CUR searcher (None when it has none)."""

    collection: Collection
    encoder: Encoder
    cur: CURSearcher | None


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


def _target(state: ServiceState, collection: Collection) -> Target:
    # the collection's own encoder (shared through the pool by every collection of its spec); loading it is the
    # slow part of a collection's first request, so it runs in the route's thread, never on the event loop
    return Target(collection, state.batched(collection.encoder), state.cur_of(collection))


async def get_target(state: Annotated[ServiceState, Depends(get_state)], encoder: EncoderDep) -> Target:
    """The top-level routes' collection (the one `semspace serve COLLECTION` serves) with the service's encoder; a
    404 without one."""
    if state.collection is None:
        raise http_error(404, NO_DEFAULT if state.catalog is not None else NO_COLLECTION)
    return Target(state.collection, encoder, state.cur)


CollectionName = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=63, description="The collection's name (GET /collections lists them).")
]


def get_named_target(collection: CollectionName, state: Annotated[ServiceState, Depends(get_state)]) -> Target:
    """The collection /collections/{collection}/… names; a 404 when there is none."""
    return _target(state, state.named(collection))


EncoderDep = Annotated[Encoder, Depends(get_encoder)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
TargetDep = Annotated[Target, Depends(get_target)]
NamedTargetDep = Annotated[Target, Depends(get_named_target)]


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
