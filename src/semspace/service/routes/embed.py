"""POST /embed (texts → vectors; also TEI's `{"inputs": ...}` body) and POST /similarity (pairs → cosine scores)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from semspace.service.deps import EncoderDep, LimitsDep, MetricsDep
from semspace.service.encoding import check_untruncated, encode_async, token_lengths
from semspace.service.schemas import (
    EmbedRequest,
    EmbedResponse,
    SimilarityRequest,
    SimilarityResponse,
    TEIEmbedRequest,
    error_responses,
)
from semspace.service.security import StrictJSONRoute
from semspace.transform import paired_cosine

router = APIRouter(tags=["embeddings"], route_class=StrictJSONRoute)


@router.post("/embed", response_model=EmbedResponse | list[list[float]], responses=error_responses(413, 422))
async def embed(
    body: EmbedRequest | TEIEmbedRequest, encoder: EncoderDep, limits: LimitsDep, metrics: MetricsDep
) -> EmbedResponse | list[list[float]]:
    """One vector per text (a coroutine: small requests await the batcher, larger ones run in the thread pool).
    `{"texts": [...], "normalize": false}` → `{"model", "dim", "embeddings"}`;
    TEI's `{"inputs": str | [str], "normalize": true, "truncate": false}` → a bare list of vectors (TEI's
    defaults: normalised, and a text over the token limit is a 413 unless `truncate` is true)."""
    if isinstance(body, TEIEmbedRequest):
        texts = body.texts()
        limits.check_texts(texts, "inputs")
        metrics.observe_batch("/embed", len(texts))
        if not body.truncate:
            check_untruncated(encoder, await run_in_threadpool(token_lengths, encoder, texts))
        return (await encode_async(encoder, texts, normalize=body.normalize, show_progress_bar=False)).tolist()
    limits.check_texts(body.texts)
    metrics.observe_batch("/embed", len(body.texts))
    vectors = await encode_async(encoder, body.texts, normalize=body.normalize, show_progress_bar=False)
    return EmbedResponse(model=encoder.model_id, dim=vectors.shape[1], embeddings=vectors.tolist())


@router.post("/similarity", response_model=SimilarityResponse, responses=error_responses(413, 422))
def similarity(body: SimilarityRequest, encoder: EncoderDep, limits: LimitsDep) -> SimilarityResponse:
    """The cosine of each pair; every distinct text is encoded once."""
    limits.check_texts(body.texts(), "pair texts")
    texts = list(dict.fromkeys(body.texts()))
    vectors = encoder.encode(texts, show_progress_bar=False)
    row = {t: i for i, t in enumerate(texts)}
    a = vectors[[row[p[0]] for p in body.pairs]]
    b = vectors[[row[p[1]] for p in body.pairs]]
    return SimilarityResponse(scores=paired_cosine(a, b).astype(float).tolist())
