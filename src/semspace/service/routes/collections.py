"""GET/POST /collections, GET/DELETE /collections/{collection}: the collections a server serves.

`semspace serve DIR` on a folder of collections creates, lists and drops them (:class:`~semspace.search.Catalog`);
`semspace serve COLLECTION` lists its one collection and answers 403 to create and drop. A new collection uses a
model this server already has (its own, or one of its collections'): a request cannot make the server load an
arbitrary model from its disk or the Hub. Each collection's documents and search live under
/collections/{collection}/… (routes/documents.py, routes/search.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from semspace.encode import Encoder
from semspace.search import Collection
from semspace.service.deps import CollectionName, ServiceState, StateDep
from semspace.service.schemas import (
    CollectionCreate,
    CollectionDeleted,
    CollectionInfo,
    CollectionList,
    error_responses,
    http_error,
)
from semspace.service.security import StrictJSONRoute

router = APIRouter(tags=["collections"], route_class=StrictJSONRoute)

SINGLE = (
    "This server serves the single collection {name!r}: start it on a folder of collections (`semspace serve DIR`) "
    "to create or drop collections."
)


def describe(collection: Collection) -> CollectionInfo:
    """`info()` of a collection as the service shows it: without the server's file path."""
    info = collection.info()
    info.pop("path", None)
    return CollectionInfo(**info)


@router.get("/collections", response_model=CollectionList)
def list_collections(state: StateDep) -> CollectionList:
    """Every collection this server serves: name, size, encoder, index and dim (GET /collections/{name} says
    more about one)."""
    return CollectionList(
        collections=[CollectionInfo(**{k: v for k, v in c.items() if k != "path"}) for c in state.summaries()]
    )


@router.post(
    "/collections",
    status_code=201,
    response_model=CollectionInfo,
    responses=error_responses(400, 403, 404, 409, 422),
)
def create_collection(body: CollectionCreate, state: StateDep) -> CollectionInfo:
    """Create an empty collection (a 409 when the name is taken, unless `get_or_create`). `model`: one this server
    has loaded or serves (default: the server's own; another is a 404); `index`: a FAISS factory string (Flat,
    HNSW32, IVF256,PQ16…); `precision`: how the index keeps vectors (float32, int8: FAISS SQ8, binary: sign bits
    with float rescoring; a combination FAISS has no index for is a 400)."""
    if state.catalog is None:
        raise http_error(403, SINGLE.format(name=state.collection.path.name if state.collection else None))
    model = _served_model(state, body.model)
    if body.pooling == "default" and body.max_length is None and isinstance(model, Encoder):
        chosen: str | Encoder = model
    else:
        chosen = model.model_id if isinstance(model, Encoder) else model
    coll = state.catalog.create_collection(
        body.name,
        chosen,
        index=body.index,
        pooling=body.pooling,
        max_length=body.max_length,
        precision=body.precision,
        get_or_create=body.get_or_create,
    )
    return describe(coll)


@router.get("/collections/{collection}", response_model=CollectionInfo, responses=error_responses(404, 422))
def collection_info(collection: CollectionName, state: StateDep) -> CollectionInfo:
    """Size, encoder, index, transform and the state of the index of one collection."""
    return describe(state.named(collection))


@router.delete("/collections/{collection}", response_model=CollectionDeleted, responses=error_responses(403, 404, 422))
def delete_collection(collection: CollectionName, state: StateDep) -> CollectionDeleted:
    """Drop a collection and its files."""
    if state.catalog is None:
        state.named(collection)  # a 404 first when the name is not this server's collection
        raise http_error(403, SINGLE.format(name=collection))
    state.catalog.delete_collection(collection)
    return CollectionDeleted(deleted=collection)


def _served_model(state: ServiceState, model: str | None) -> Encoder | str:
    """The encoder (or model id) a new collection may use: the server's own by default, else one that is loaded or
    that a served collection records; anything else is a 404 naming the models it may use."""
    if model is None:
        return state.encoder
    for encoder in state.encoders:
        if model == encoder.model_id:
            return encoder
    recorded: dict[str, Any] = {}
    for summary in state.summaries():
        recorded.setdefault(summary["encoder"]["model"], summary["encoder"])
    if model in recorded:
        return state.encoders.get(recorded[model])
    allowed = sorted({e.model_id for e in state.encoders} | set(recorded))
    raise http_error(
        404,
        f"Model {model!r} is not served here; this server can create collections with: {', '.join(allowed)}. "
        "Start the server with `--model` for another one.",
    )
