"""POST /search: nearest neighbours in the collection, or cross-encoder search with its CUR searcher (rerank="cur",
"rnr" or "auto")."""

# no `from __future__ import annotations`: see routes/documents.py
import json
from typing import Any

from fastapi import APIRouter

from semspace.interact.searcher import CURSearcher
from semspace.search import Collection
from semspace.service.deps import LimitsDep, NamedTargetDep, TargetDep
from semspace.service.schemas import (
    Hit,
    Limits,
    QueryHits,
    SearchRequest,
    SearchResponse,
    error_responses,
    http_error,
)
from semspace.service.security import StrictJSONRoute

NO_CUR = "No CUR index is attached: build one with `semspace cur build <collection>/cur --collection <collection> …`."


def search_router(target_dep: Any, tags: list[str]) -> APIRouter:
    """POST /search over the collection `target_dep` resolves (the server's single one, or a named one)."""
    router = APIRouter(tags=tags, route_class=StrictJSONRoute)
    TargetIn = target_dep  # a type alias, used in the signature below

    @router.post("/search", response_model=SearchResponse, responses=error_responses(404, 413, 422))
    def search(body: SearchRequest, target: TargetIn, limits: LimitsDep) -> SearchResponse:
        """Top-k hits per query; rerank: `budget` CE calls a query by CUR (ANNCUR / adaCUR, Yadav et al. 2022, 2023),
        RnR-DE, or ("auto") whichever measured the higher Top-k-Recall@B when the index was built (each hit list says
        which ran and why; "rnr" on an index without a bi-encoder side is a 422).

        A 413 before any work when queries × k is over the hit limit, and before the response is built when the hits'
        text and metadata add up to more than the response limit."""
        coll, encoder, cur = target.collection, target.encoder, target.cur
        queries = body.query_list()
        limits.check_texts(queries, "queries")
        limits.check_k(body.k, len(queries))
        if body.rerank is not None:
            if cur is None:
                raise http_error(404, NO_CUR)
            if body.filter is not None or body.mode != "dense":
                raise http_error(
                    422,
                    f"rerank={body.rerank!r} searches every item of the CUR index: 'filter' and 'mode' do not apply.",
                )
            found = [_cur_hits(cur, coll, q, body) for q in queries]
            _check_size(limits, found)
            return SearchResponse(results=found)
        if body.mode == "dense":
            vectors = encoder.encode(queries, show_progress_bar=False)
            results = coll.search_vectors(vectors, body.k, where=body.filter)
        else:  # BM25 needs the query texts; hybrid encodes them with the collection's encoder
            results = coll.search(
                queries, k=body.k, where=body.filter, mode=body.mode, fusion=body.fusion, alpha=body.alpha
            )
        found = [
            QueryHits(query=q, hits=[Hit(**h) for h in r.to_dicts()]) for q, r in zip(queries, results, strict=True)
        ]
        _check_size(limits, found)
        return SearchResponse(results=found)

    return router


def _check_size(limits: Limits, found: list[QueryHits]) -> None:
    """413 when the hits' texts and metadata (as UTF-8 / compact JSON) are over `limits.max_response_bytes`."""
    size = 0
    for q in found:
        for h in q.hits:
            size += len(h.text.encode("utf-8", "surrogatepass")) + len(h.id) + 64
            if h.metadata:
                size += len(
                    json.dumps(h.metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
                )
            if size > limits.max_response_bytes:
                limits.check_response(size)


def _cur_hits(cur: CURSearcher, coll: Collection, query: str, body: SearchRequest) -> QueryHits:
    """One query through the CUR searcher; hits deleted from the collection since the index was built are dropped."""
    hit = cur.search(query, k=body.k, budget=body.budget, rounds=body.rounds, method=body.rerank or "cur")
    alive = {d["id"]: d for d in coll.get_existing(hit.ids)}
    hits = [
        Hit(id=i, score=s, text=alive[i]["text"], metadata=alive[i]["metadata"])
        for i, s in zip(hit.ids, hit.exact_scores, strict=True)
        if i in alive
    ]
    return QueryHits(query=query, ce_calls=hit.calls, hits=hits, method=hit.method, reason=hit.reason)


router = search_router(TargetDep, ["search"])
named_router = search_router(NamedTargetDep, ["collections"])
