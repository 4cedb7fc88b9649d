"""Request/response models of the service and its per-request limits (the one place that checks them).

Shape errors (a missing field, `k < 1`, an empty list) are pydantic's 422s; the limits depend on how the service was
started, so they are checked by :class:`Limits` and raise a 413 (too many, too long) or 422 (empty) with a string
`detail`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field

from semspace.errors import check_param


def http_error(status: int, detail: str) -> HTTPException:
    """An HTTP error whose JSON body is `{"detail": detail}`."""
    return HTTPException(status_code=status, detail=detail)


@dataclass
class Limits:
    """Per-request limits; `max_body_bytes` is enforced on the Content-Length before the body is read."""

    max_batch: int = 256  # texts (or pairs, or documents, or ids) per request
    max_text_chars: int = 20_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_k: int = 1000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            check_param(f.name, "Limits", isinstance(value, int) and value >= 1, "an int >= 1", value)

    def check_batch(self, n: int, what: str) -> None:
        """413 when a request carries more than `max_batch` items."""
        if n > self.max_batch:
            raise http_error(413, f"Too many {what}: {n} > {self.max_batch} per request.")

    def check_texts(self, texts: Sequence[str], what: str = "texts") -> None:
        """413 for too many or too long texts, 422 for a blank one; `what` names them in the message."""
        self.check_batch(len(texts), what)
        for i, t in enumerate(texts):
            if not t.strip():
                raise http_error(422, f"{what}[{i}] is empty.")
            if len(t) > self.max_text_chars:
                raise http_error(413, f"{what}[{i}] has {len(t)} characters; the limit is {self.max_text_chars}.")

    def check_k(self, k: int) -> None:
        """422 when more neighbours are asked for than `max_k`."""
        if k > self.max_k:
            raise http_error(422, f"k={k} is over the limit of {self.max_k}.")


# -- /embed, /similarity ---------------------------------------------------------------------------------------
class EmbedRequest(BaseModel):
    texts: list[str] = Field(min_length=1)
    normalize: bool = False


class EmbedResponse(BaseModel):
    model: str
    dim: int
    embeddings: list[list[float]]


class SimilarityRequest(BaseModel):
    pairs: list[tuple[str, str]] = Field(min_length=1)

    def texts(self) -> list[str]:
        """Both sides of every pair, in order."""
        return [t for pair in self.pairs for t in pair]


class SimilarityResponse(BaseModel):
    scores: list[float]


# -- /search ---------------------------------------------------------------------------------------------------
class SearchRequest(BaseModel):
    query: str | None = None
    queries: list[str] | None = None
    k: int = Field(default=10, ge=1)
    rerank: Literal["cur"] | None = None  # cross-encoder search with the CUR index in <collection>/cur
    budget: int = Field(default=100, ge=1)  # CE calls per query when rerank="cur"
    rounds: int = Field(default=1, ge=1)  # 1 = ANNCUR, >= 2 = adaptive rounds

    def query_list(self) -> list[str]:
        """The queries as a list; 422 unless exactly one of `query` / `queries` is given and it is not empty."""
        if (self.query is None) == (self.queries is None):
            raise http_error(422, "Give exactly one of 'query' or 'queries'.")
        queries = [self.query] if self.query is not None else list(self.queries or [])
        if not queries:
            raise http_error(422, "'queries' is empty.")
        return queries


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


# -- /documents ------------------------------------------------------------------------------------------------
class DocumentIn(BaseModel):
    id: str | None = None
    text: str
    metadata: dict = Field(default_factory=dict)


class AddRequest(BaseModel):
    documents: list[DocumentIn] = Field(min_length=1)

    def ids(self) -> list[str] | None:
        """The given ids, or None when no document has one; 422 when only some have one."""
        given = [d.id for d in self.documents]
        if all(i is None for i in given):
            return None
        if any(i is None for i in given):
            raise http_error(422, "Give an id for every document or for none.")
        return [i for i in given if i is not None]


class AddResponse(BaseModel):
    ids: list[str]
    count: int


class DeleteRequest(BaseModel):
    ids: list[str] = Field(min_length=1)


class DeleteResponse(BaseModel):
    deleted: int
    count: int


# -- /health ---------------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str
    model: str
    dim: int
    documents: int | None
    index: str | None
