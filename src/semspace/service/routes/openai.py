"""OpenAI-compatible POST /v1/embeddings (also at POST /embeddings, as TEI serves it), GET /v1/models and
GET /v1/models/{id}: what the `openai` client and LangChain's `OpenAIEmbeddings` call. Errors on these routes have
OpenAI's `{"error": {...}}` shape.

`model` may be any name: the one model served answers it, as TEI does (most tools send `text-embedding-3-small`
unless told otherwise, and refusing it would only make users look up a name that changes nothing). The response's
`model` and GET /v1/models say what is served: its id and the names it is known by (e.g. the bundled model's Hub
id). `create_app(strict_model=True)` (`serve --strict-model`) refuses any other name with a 404, as OpenAI does
for a model it does not have."""

from __future__ import annotations

import base64
import time

import numpy as np
from fastapi import APIRouter
from starlette.responses import Response

from semspace.encode.models import model_aliases
from semspace.service.deps import EncoderDep, LimitsDep, MetricsDep, StateDep
from semspace.service.encoding import encode_counted_async, json_response, project, tokens_read
from semspace.service.fastpath import FastJSONRoute
from semspace.service.schemas import (
    OpenAIEmbeddingsRequest,
    OpenAIEmbeddingsResponse,
    OpenAIModel,
    OpenAIModelList,
    error_responses,
    http_error,
)
from semspace.service.security import StrictJSONRoute

router = APIRouter(prefix="/v1", tags=["openai"], route_class=StrictJSONRoute)
# TEI serves the OpenAI route at /embeddings too (clients given the server's root as their base URL)
root_router = APIRouter(tags=["openai"], route_class=StrictJSONRoute)

STARTED = int(time.time())
TOKEN_IDS = "Token-id input is not supported: send 'input' as a string or a list of strings."


def model_ids(encoder: EncoderDep) -> list[str]:
    """What GET /v1/models lists: the encoder's id, then the other names it is known by."""
    return [encoder.model_id, *model_aliases(encoder.model_id)]


async def embeddings(
    body: OpenAIEmbeddingsRequest, state: StateDep, encoder: EncoderDep, limits: LimitsDep, metrics: MetricsDep
) -> Response:
    """Vectors as `Encoder.encode` gives them, whatever `model` names (the one model served answers; with
    `strict_model`, only its id and names do);
    `encoding_format="base64"` packs each as little-endian float32; `dimensions` below the encoder's own gives the
    first whitened components of the collection's whitening, L2-normalised like OpenAI's shortened embeddings (see
    :func:`semspace.service.encoding.project`); `usage` counts the tokens the model read (counted by the batcher
    with the encoding). The body is written by orjson, as /embed's, without validating every number."""
    if state.strict_model and body.model is not None and body.model not in model_ids(encoder):
        raise http_error(404, f"The model {body.model!r} does not exist; this service serves {encoder.model_id!r}.")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts:
        raise http_error(422, "'input' is empty.")
    if not all(isinstance(t, str) for t in texts):
        raise http_error(400, TOKEN_IDS)
    limits.check_texts(texts, "input")
    metrics.observe_batch("/v1/embeddings", len(texts))
    vectors, lengths = await encode_counted_async(encoder, texts, show_progress_bar=False)
    vectors = project(vectors, body.dimensions, encoder, state.collection, normalize=True)
    if body.encoding_format == "base64":
        rows = [base64.b64encode(row.tobytes()).decode("ascii") for row in vectors.astype("<f4", copy=False)]
    else:  # float64: the numbers `tolist()` gives, as /embed writes them
        rows = list(np.asarray(vectors, dtype=np.float64))
    data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(rows)]
    used = tokens_read(encoder, lengths, texts)
    usage = {"prompt_tokens": used, "total_tokens": used}
    return json_response({"object": "list", "data": data, "model": encoder.model_id, "usage": usage})


for _router, _path in ((router, "/embeddings"), (root_router, "/embeddings")):
    _router.add_api_route(
        _path,
        embeddings,
        methods=["POST"],
        response_model=OpenAIEmbeddingsResponse,
        responses=error_responses(400, 404, 413, 415, 422, openai=True),
        summary="Embeddings (OpenAI)",
        route_class_override=FastJSONRoute,  # the hot route: its common request skips FastAPI's dependency solving
    )


@router.get("/models", response_model=OpenAIModelList)
def models(encoder: EncoderDep) -> OpenAIModelList:
    """The one model this service serves, under its id and the names it is known by (every name answers
    /v1/embeddings: any `model` is accepted)."""
    return OpenAIModelList(data=[OpenAIModel(id=i, created=STARTED) for i in model_ids(encoder)])


@router.get("/models/{model_id:path}", response_model=OpenAIModel, responses=error_responses(404, 422, openai=True))
def model(model_id: str, encoder: EncoderDep) -> OpenAIModel:
    """One model by id (ids may hold slashes, like Hugging Face ids); a 404 for a name this service does not list."""
    if model_id not in model_ids(encoder):
        raise http_error(404, f"The model {model_id!r} does not exist; this service serves {encoder.model_id!r}.")
    return OpenAIModel(id=model_id, created=STARTED)
