"""POST /search: nearest neighbours in the collection, or cross-encoder search with its CUR index (rerank="cur")."""

from __future__ import annotations

from fastapi import APIRouter

from semspace.interact.searcher import CURSearcher
from semspace.search import Collection
from semspace.service.deps import CollectionDep, CURDep, EncoderDep, LimitsDep
from semspace.service.schemas import Hit, QueryHits, SearchRequest, SearchResponse, http_error

router = APIRouter(tags=["search"])

NO_CUR = "No CUR index is attached: build one with `semspace cur build <collection>/cur --collection <collection> …`."


@router.post("/search", response_model=SearchResponse)
def search(
    body: SearchRequest, encoder: EncoderDep, limits: LimitsDep, coll: CollectionDep, cur: CURDep
) -> SearchResponse:
    """Top-k hits per query; rerank="cur": `budget` CE calls a query (ANNCUR / adaCUR, Yadav et al. 2022, 2023)."""
    queries = body.query_list()
    limits.check_texts(queries, "queries")
    limits.check_k(body.k)
    if body.rerank == "cur":
        if cur is None:
            raise http_error(404, NO_CUR)
        return SearchResponse(results=[_cur_hits(cur, coll, q, body) for q in queries])
    results = coll.search_vectors(encoder.encode(queries, show_progress_bar=False), body.k)
    return SearchResponse(
        results=[
            QueryHits(query=q, hits=[Hit(**h) for h in r.to_dicts()]) for q, r in zip(queries, results, strict=True)
        ]
    )


def _cur_hits(cur: CURSearcher, coll: Collection, query: str, body: SearchRequest) -> QueryHits:
    """One query through the CUR searcher; hits deleted from the collection since the index was built are dropped."""
    hit = cur.search(query, k=body.k, budget=body.budget, rounds=body.rounds)
    alive = {d["id"]: d for d in coll.get_existing(hit.ids)}
    hits = [
        Hit(id=i, score=s, text=alive[i]["text"], metadata=alive[i]["metadata"])
        for i, s in zip(hit.ids, hit.exact_scores, strict=True)
        if i in alive
    ]
    return QueryHits(query=query, ce_calls=hit.calls, hits=hits)
