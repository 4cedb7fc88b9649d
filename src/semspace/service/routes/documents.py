"""POST /documents (add), PUT /documents (upsert), GET /documents (a page), POST /documents/list (a filtered page),
POST /documents/get and GET /documents/{id} (by id), DELETE /documents: writes go through the collection's
cross-process lock.

Each route exists twice: on the server's single collection (`semspace serve COLLECTION`: /documents…) and on a
named one (/collections/{collection}/documents…); :func:`documents_router` builds either from the dependency that
finds the collection.
"""

# no `from __future__ import annotations`: FastAPI reads the signatures of routes defined inside
# documents_router, whose dependency type is a local name, so annotations must be evaluated where they are written
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Query, Request

from semspace.service.deps import LimitsDep, MetricsDep, NamedTargetDep, Target, TargetDep
from semspace.service.schemas import (
    CURSOR_PATTERN,
    AddRequest,
    AddResponse,
    DeleteRequest,
    DeleteResponse,
    Document,
    DocumentPageResponse,
    GetRequest,
    GetResponse,
    ListRequest,
    UpsertRequest,
    error_responses,
)
from semspace.service.security import StrictJSONRoute


def documents_router(target_dep: Any, tags: list[str]) -> APIRouter:
    """The /documents routes over the collection `target_dep` resolves (a :class:`Target` dependency)."""
    router = APIRouter(tags=tags, route_class=StrictJSONRoute)
    _add_write_routes(router, target_dep)
    _add_read_routes(router, target_dep)
    return router


def _add_write_routes(router: APIRouter, TargetIn: Any) -> None:  # TargetIn: a type alias for the signatures

    @router.post("/documents", response_model=AddResponse, responses=error_responses(404, 409, 413, 422))
    def add_documents(body: AddRequest, target: TargetIn, limits: LimitsDep, metrics: MetricsDep) -> AddResponse:
        """Add documents (ids for all or none); a 409 and nothing written when an id is already there; a 413 when
        a document's metadata is over the metadata limit."""
        texts = [d.text for d in body.documents]
        limits.check_texts(texts, "documents")
        limits.check_metadata([d.metadata for d in body.documents])
        metrics.observe_batch("/documents", len(texts))
        ids = body.ids()
        coll = target.collection
        vectors = target.encoder.encode(texts, show_progress_bar=False)  # outside the write lock
        added = coll.add(texts, ids=ids, metadata=[d.metadata for d in body.documents], vectors=vectors)
        return AddResponse(ids=added, count=len(coll))

    @router.put("/documents", response_model=AddResponse, responses=error_responses(404, 409, 413, 422))
    def upsert_documents(body: UpsertRequest, target: TargetIn, limits: LimitsDep, metrics: MetricsDep) -> AddResponse:
        """Add or replace by id (every document needs an id), in one transaction."""
        texts = [d.text for d in body.documents]
        limits.check_texts(texts, "documents")
        limits.check_metadata([d.metadata for d in body.documents])
        ids = [d.id for d in body.documents]
        metrics.observe_batch("/documents", len(texts))
        coll = target.collection
        vectors = target.encoder.encode(texts, show_progress_bar=False)  # outside the write lock
        done = coll.upsert(texts, ids, metadata=[d.metadata for d in body.documents], vectors=vectors)
        return AddResponse(ids=done, count=len(coll))


def _add_read_routes(router: APIRouter, TargetIn: Any) -> None:  # TargetIn: a type alias for the signatures
    @router.get("/documents", response_model=DocumentPageResponse, responses=error_responses(404, 422))
    def list_documents(
        target: TargetIn,
        limits: LimitsDep,
        limit: int = Query(default=100, ge=1, le=10_000),
        offset: int = Query(default=0, ge=0, le=2**53),
        cursor: str | None = Query(default=None, pattern=CURSOR_PATTERN),
    ) -> DocumentPageResponse:
        """One page of documents in insertion order; page on with `next_cursor` (stable while others write). A
        page stops early at the response limit (bytes of text and metadata): `next_cursor` goes on from there. With
        a metadata filter: POST /documents/list."""
        coll = target.collection
        page = coll.list_documents(limit=limit, offset=offset, cursor=cursor, max_bytes=limits.max_response_bytes)
        return DocumentPageResponse(documents=page.documents, next_cursor=page.next_cursor, count=len(coll))

    @router.post("/documents/list", response_model=DocumentPageResponse, responses=error_responses(400, 404, 422))
    def list_documents_where(body: ListRequest, target: TargetIn, limits: LimitsDep) -> DocumentPageResponse:
        """One page of the documents whose metadata match `filter` (a JSON body: no URL length limit to meet); cut
        at the response limit like GET /documents."""
        coll = target.collection
        page = coll.list_documents(
            limit=body.limit,
            offset=body.offset,
            where=body.filter,
            cursor=body.cursor,
            max_bytes=limits.max_response_bytes,
        )
        return DocumentPageResponse(
            documents=page.documents, next_cursor=page.next_cursor, count=coll.count(body.filter)
        )

    @router.post("/documents/get", response_model=GetResponse, responses=error_responses(404, 413, 422))
    def get_documents(body: GetRequest, target: TargetIn, limits: LimitsDep) -> GetResponse:
        """Documents by id, in order — any id, including ones a URL cannot carry (`.`, `..`); a 404 for an unknown
        id unless `missing` is "skip"."""
        limits.check_batch(len(body.ids), "ids")
        coll = target.collection
        found = coll.get(body.ids) if body.missing == "error" else coll.get_existing(body.ids)
        return GetResponse(documents=[Document(**d) for d in found])

    @router.get("/documents/{doc_id:path}", response_model=Document, responses=error_responses(404, 422))
    def get_document(doc_id: str, target: TargetIn, request: Request) -> Document:
        """One document; a 404 when the id is unknown. Percent-encode the id (`/` may also stay as it is); `.` and
        `..` are removed from URLs by HTTP clients: fetch those with POST /documents/get."""
        return Document(**target.collection.get([_raw_id(request, doc_id)])[0])

    @router.delete("/documents", response_model=DeleteResponse, responses=error_responses(404, 413, 422))
    def delete_documents(body: DeleteRequest, target: TargetIn, limits: LimitsDep) -> DeleteResponse:
        """Delete by id; a 404 (and nothing deleted) when an id is unknown."""
        limits.check_batch(len(body.ids), "ids")
        coll = target.collection
        return DeleteResponse(deleted=coll.delete(body.ids), count=len(coll))


router = documents_router(TargetDep, ["documents"])
named_router = documents_router(NamedTargetDep, ["collections"])

__all__ = ["Target", "documents_router", "named_router", "router"]


def _raw_id(request: Request, decoded: str) -> str:
    """The id as the client percent-encoded it, decoded exactly once (the router's copy has been decoded twice, so
    an id holding `%2F` would come out as `/`)."""
    raw = request.scope.get("raw_path")
    if not raw:
        return decoded
    _, found, rest = raw.decode("latin-1").partition("/documents/")  # a collection name holds no "/"
    return unquote(rest, encoding="utf-8", errors="replace") if found else decoded  # not UTF-8: no such id
