"""FastAPI service: embeddings, pair similarity, search and document writes over one Collection.

The encoder and the collection are loaded once (lifespan) and injected with `Depends`, so tests can override them.
Writes are serialised by the collection's lock; bad input is a 4xx with a JSON `detail`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from semspace.encode import Encoder
from semspace.errors import (
    CollectionError,
    DocumentNotFoundError,
    DuplicateIdError,
    SemspaceError,
)
from semspace.search import Collection
from semspace.transform import paired_cosine


@dataclass
class Limits:
    max_batch: int = 256  # texts (or pairs, or documents) per request
    max_text_chars: int = 20_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_k: int = 1000


@dataclass
class ServiceState:
    encoder: Encoder
    collection: Collection | None
    limits: Limits
    cur: Any = field(default=None)  # a CURSearcher when <collection>/cur exists


# -- request / response models ---------------------------------------------------------------------------------
class EmbedRequest(BaseModel):
    texts: list[str] = Field(min_length=1)
    normalize: bool = False


class EmbedResponse(BaseModel):
    model: str
    dim: int
    embeddings: list[list[float]]


class SimilarityRequest(BaseModel):
    pairs: list[tuple[str, str]] = Field(min_length=1)


class SimilarityResponse(BaseModel):
    scores: list[float]


class SearchRequest(BaseModel):
    query: str | None = None
    queries: list[str] | None = None
    k: int = Field(default=10, ge=1)
    rerank: Literal["cur"] | None = None  # cross-encoder search with the CUR index in <collection>/cur
    budget: int = Field(default=100, ge=1)  # CE calls per query when rerank="cur"
    rounds: int = Field(default=1, ge=1)  # 1 = ANNCUR, >= 2 = adaptive rounds


class Hit(BaseModel):
    id: str
    score: float
    text: str
    metadata: dict


class QueryHits(BaseModel):
    query: str
    hits: list[Hit]
    ce_calls: int | None = None


class SearchResponse(BaseModel):
    results: list[QueryHits]


class DocumentIn(BaseModel):
    id: str | None = None
    text: str
    metadata: dict = Field(default_factory=dict)


class AddRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1)


class AddResponse(BaseModel):
    ids: list[str]
    count: int


class DeleteRequest(BaseModel):
    ids: list[str] = Field(min_length=1)


class DeleteResponse(BaseModel):
    deleted: int
    count: int


class Health(BaseModel):
    status: str
    model: str
    dim: int
    documents: int | None
    index: str | None


def _bad(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def create_app(
    collection: str | Path | Collection | None = None,
    encoder: Encoder | str | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """The app over a collection folder (or object) or none (then only /embed and /similarity work)."""
    limits = limits or Limits()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        coll = Collection.open(collection) if isinstance(collection, str | Path) else collection
        enc = (
            encoder
            if isinstance(encoder, Encoder)
            else (coll.encoder if coll is not None and encoder is None else Encoder(encoder))
        )
        if coll is not None and coll._encoder is None:
            coll._encoder = enc
        cur = None
        if coll is not None and (coll.path / "cur" / "cur.json").exists():
            from semspace.interact.searcher import CURSearcher

            cur = CURSearcher.load(coll.path / "cur")
        app.state.semspace = ServiceState(enc, coll, limits, cur)
        yield
        if coll is not None and isinstance(collection, str | Path):
            coll.close()

    app = FastAPI(
        title="semspace",
        version=_version(),
        lifespan=lifespan,
        description="Embeddings, similarity and semantic search over a semspace collection.",
    )

    def state(request: Request) -> ServiceState:
        return request.app.state.semspace

    def need_collection(st: ServiceState = Depends(state)) -> Collection:
        if st.collection is None:
            raise _bad(404, "No collection is attached to this service (start it with `semspace serve PATH`).")
        return st.collection

    def check_texts(texts: list[str], st: ServiceState, what: str = "texts") -> None:
        if len(texts) > st.limits.max_batch:
            raise _bad(413, f"Too many {what}: {len(texts)} > {st.limits.max_batch} per request.")
        for i, t in enumerate(texts):
            if not t.strip():
                raise _bad(422, f"{what}[{i}] is empty.")
            if len(t) > st.limits.max_text_chars:
                raise _bad(413, f"{what}[{i}] has {len(t)} characters; the limit is {st.limits.max_text_chars}.")

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            return JSONResponse(
                status_code=413, content={"detail": f"Request body over {limits.max_body_bytes} bytes."}
            )
        return await call_next(request)

    @app.exception_handler(SemspaceError)
    async def semspace_error(request: Request, exc: SemspaceError) -> JSONResponse:
        status = (
            404
            if isinstance(exc, DocumentNotFoundError)
            else 409
            if isinstance(exc, DuplicateIdError)
            else 500
            if isinstance(exc, CollectionError)
            else 400
        )
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.get("/health", response_model=Health)
    def health(st: ServiceState = Depends(state)) -> Health:
        c = st.collection
        return Health(
            status="ok",
            model=st.encoder.model_id,
            dim=st.encoder.dim,
            documents=None if c is None else len(c),
            index=None if c is None else c.index.factory,
        )

    @app.post("/embed", response_model=EmbedResponse)
    def embed(body: EmbedRequest, st: ServiceState = Depends(state)) -> EmbedResponse:
        check_texts(body.texts, st)
        vectors = st.encoder.encode(body.texts, normalize=body.normalize, show_progress_bar=False)
        return EmbedResponse(model=st.encoder.model_id, dim=vectors.shape[1], embeddings=vectors.tolist())

    @app.post("/similarity", response_model=SimilarityResponse)
    def similarity(body: SimilarityRequest, st: ServiceState = Depends(state)) -> SimilarityResponse:
        check_texts([t for pair in body.pairs for t in pair], st, "pair texts")
        texts = list(dict.fromkeys(t for pair in body.pairs for t in pair))
        vectors = st.encoder.encode(texts, show_progress_bar=False)
        row = {t: i for i, t in enumerate(texts)}
        a = vectors[[row[p[0]] for p in body.pairs]]
        b = vectors[[row[p[1]] for p in body.pairs]]
        return SimilarityResponse(scores=paired_cosine(a, b).astype(float).tolist())

    @app.post("/search", response_model=SearchResponse)
    def search(
        body: SearchRequest,
        st: ServiceState = Depends(state),
        coll: Collection = Depends(need_collection),
    ) -> SearchResponse:
        if (body.query is None) == (body.queries is None):
            raise _bad(422, "Give exactly one of 'query' or 'queries'.")
        queries = [body.query] if body.query is not None else list(body.queries or [])
        if not queries:
            raise _bad(422, "'queries' is empty.")
        check_texts(queries, st, "queries")
        if body.k > st.limits.max_k:
            raise _bad(422, f"k={body.k} is over the limit of {st.limits.max_k}.")
        if body.rerank == "cur":
            if st.cur is None:
                raise _bad(
                    404,
                    "No CUR index is attached: build one with `semspace cur build <collection>/cur "
                    "--collection <collection> …`.",
                )
            out = []
            for q in queries:
                hit = st.cur.search(q, k=body.k, budget=body.budget, rounds=body.rounds)
                alive = {d["id"]: d for d in coll.get_existing(hit.ids)}
                out.append(
                    QueryHits(
                        query=q,
                        ce_calls=hit.calls,
                        hits=[
                            Hit(id=i, score=s, text=alive[i]["text"], metadata=alive[i]["metadata"])
                            for i, s in zip(hit.ids, hit.exact_scores, strict=True)
                            if i in alive
                        ],
                    )
                )
            return SearchResponse(results=out)
        vectors = st.encoder.encode(queries, show_progress_bar=False)
        results = coll.search_vectors(vectors, body.k)
        return SearchResponse(
            results=[
                QueryHits(query=q, hits=[Hit(**h) for h in r.to_dicts()]) for q, r in zip(queries, results, strict=True)
            ]
        )

    @app.post("/documents", response_model=AddResponse)
    def add_documents(
        body: AddRequest,
        st: ServiceState = Depends(state),
        coll: Collection = Depends(need_collection),
    ) -> AddResponse:
        texts = [d.text for d in body.documents]
        check_texts(texts, st, "documents")
        given = [d.id for d in body.documents]
        if any(i is not None for i in given) and not all(i is not None for i in given):
            raise _bad(422, "Give an id for every document or for none.")
        vectors = st.encoder.encode(texts, show_progress_bar=False)  # outside the write lock
        ids = coll.add(
            texts,
            ids=None if given[0] is None else given,
            metadata=[d.metadata for d in body.documents],
            vectors=vectors,
        )
        return AddResponse(ids=ids, count=len(coll))

    @app.get("/documents/{doc_id}", response_model=Hit)
    def get_document(doc_id: str, coll: Collection = Depends(need_collection)) -> Hit:
        doc = coll.get([doc_id])[0]
        return Hit(score=1.0, **doc)

    @app.delete("/documents", response_model=DeleteResponse)
    def delete_documents(
        body: DeleteRequest,
        st: ServiceState = Depends(state),
        coll: Collection = Depends(need_collection),
    ) -> DeleteResponse:
        if len(body.ids) > st.limits.max_batch:
            raise _bad(413, f"Too many ids: {len(body.ids)} > {st.limits.max_batch} per request.")
        deleted = coll.delete(body.ids)
        return DeleteResponse(deleted=deleted, count=len(coll))

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return (resources.files("semspace.service") / "page.html").read_text(encoding="utf-8")

    return app


def _version() -> str:
    from semspace import __version__

    return __version__
