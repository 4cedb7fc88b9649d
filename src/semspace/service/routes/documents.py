"""POST /documents (add), PUT /documents (upsert), GET /documents (a page, optionally filtered), GET
/documents/{id}, DELETE /documents: writes go through the collection's cross-process lock."""

from __future__ import annotations

from fastapi import APIRouter, Query

from semspace.service.deps import CollectionDep, EncoderDep, LimitsDep, MetricsDep
from semspace.service.schemas import (
    CURSOR_PATTERN,
    AddRequest,
    AddResponse,
    DeleteRequest,
    DeleteResponse,
    DocumentPageResponse,
    Hit,
    ListRequest,
    UpsertRequest,
    error_responses,
)
from semspace.service.security import StrictJSONRoute

router = APIRouter(tags=["documents"], route_class=StrictJSONRoute)


@router.post("/documents", response_model=AddResponse, responses=error_responses(404, 409, 413, 422))
def add_documents(
    body: AddRequest, encoder: EncoderDep, limits: LimitsDep, coll: CollectionDep, metrics: MetricsDep
) -> AddResponse:
    """Add documents (ids for all or none); a 409 and nothing written when an id is already there; a 413 when a
    document's metadata is over the metadata limit."""
    texts = [d.text for d in body.documents]
    limits.check_texts(texts, "documents")
    limits.check_metadata([d.metadata for d in body.documents])
    metrics.observe_batch("/documents", len(texts))
    ids = body.ids()
    vectors = encoder.encode(texts, show_progress_bar=False)  # outside the write lock
    added = coll.add(texts, ids=ids, metadata=[d.metadata for d in body.documents], vectors=vectors)
    return AddResponse(ids=added, count=len(coll))


@router.put("/documents", response_model=AddResponse, responses=error_responses(404, 409, 413, 422))
def upsert_documents(
    body: UpsertRequest, encoder: EncoderDep, limits: LimitsDep, coll: CollectionDep, metrics: MetricsDep
) -> AddResponse:
    """Add or replace by id (every document needs an id), in one transaction."""
    texts = [d.text for d in body.documents]
    limits.check_texts(texts, "documents")
    limits.check_metadata([d.metadata for d in body.documents])
    ids = [d.id for d in body.documents]
    metrics.observe_batch("/documents", len(texts))
    vectors = encoder.encode(texts, show_progress_bar=False)  # outside the write lock
    done = coll.upsert(texts, ids, metadata=[d.metadata for d in body.documents], vectors=vectors)
    return AddResponse(ids=done, count=len(coll))


@router.get("/documents", response_model=DocumentPageResponse, responses=error_responses(404, 422))
def list_documents(
    coll: CollectionDep,
    limit: int = Query(default=100, ge=1, le=10_000),
    offset: int = Query(default=0, ge=0, le=2**62),
    cursor: str | None = Query(default=None, pattern=CURSOR_PATTERN),
) -> DocumentPageResponse:
    """One page of documents in insertion order; page on with `next_cursor` (stable while others write). With a
    metadata filter: POST /documents/list."""
    page = coll.list_documents(limit=limit, offset=offset, cursor=cursor)
    return DocumentPageResponse(documents=page.documents, next_cursor=page.next_cursor, count=len(coll))


@router.post("/documents/list", response_model=DocumentPageResponse, responses=error_responses(400, 404, 422))
def list_documents_where(body: ListRequest, coll: CollectionDep) -> DocumentPageResponse:
    """One page of the documents whose metadata match `filter` (a JSON body: no URL length limit to meet)."""
    page = coll.list_documents(limit=body.limit, offset=body.offset, where=body.filter, cursor=body.cursor)
    return DocumentPageResponse(documents=page.documents, next_cursor=page.next_cursor, count=coll.count(body.filter))


@router.get("/documents/{doc_id}", response_model=Hit, responses=error_responses(404, 422))
def get_document(doc_id: str, coll: CollectionDep) -> Hit:
    """One document (score 1.0); a 404 when the id is unknown."""
    return Hit(score=1.0, **coll.get([doc_id])[0])


@router.delete("/documents", response_model=DeleteResponse, responses=error_responses(404, 413, 422))
def delete_documents(body: DeleteRequest, limits: LimitsDep, coll: CollectionDep) -> DeleteResponse:
    """Delete by id; a 404 (and nothing deleted) when an id is unknown."""
    limits.check_batch(len(body.ids), "ids")
    return DeleteResponse(deleted=coll.delete(body.ids), count=len(coll))
