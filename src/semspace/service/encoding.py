"""What several routes need around `Encoder.encode`: token counts (OpenAI `usage`, TEI `truncate=false`) and the
`dimensions` projection of /v1/embeddings and /embed."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from semspace.search import Collection
from semspace.service.batcher import encode_counted
from semspace.service.schemas import Limits, http_error


async def encode_async(encoder: Any, texts: list[str], **kwargs: Any) -> np.ndarray:
    """`encoder.encode(texts, **kwargs)` from a coroutine route: through the batcher's queue when the encoder is
    batched (no thread parked per request), else in the thread pool."""
    batched = getattr(encoder, "encode_async", None)
    if batched is not None:
        return await batched(texts, **kwargs)
    return await run_in_threadpool(encoder.encode, texts, **kwargs)


async def encode_counted_async(encoder: Any, texts: list[str], **kwargs: Any) -> tuple[np.ndarray, list[int] | None]:
    """:func:`encode_async` and each text's token count (:func:`token_lengths`), counted by the batcher's worker for
    the whole batch when the encoder is batched, else in the same thread-pool call as the encoding."""
    batched = getattr(encoder, "encode_counted_async", None)
    if batched is not None:
        return await batched(texts, **kwargs)
    return await run_in_threadpool(encode_counted, encoder, texts, kwargs)


def vectors_response(content: Any) -> Response:
    """A JSON response whose NumPy arrays orjson writes straight from memory. The route's response model still
    documents the body, but FastAPI no longer validates and serialises each number through Python floats — under
    single-text requests that cost the event loop more than anything but the model. float32 arrays are widened to
    float64 first, so the numbers are those `json` wrote from `tolist()` (the same doubles)."""

    def wide(value: Any) -> Any:
        if isinstance(value, np.ndarray) and value.dtype == np.float32:
            return value.astype(np.float64)
        return value

    body = {k: wide(v) for k, v in content.items()} if isinstance(content, dict) else wide(content)
    return json_response(body)


def json_response(body: Any) -> Response:
    """`body` (NumPy arrays included) written by orjson, unvalidated: the route's response model documents it."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")



def tokens_read(encoder: Any, lengths: list[int] | None, texts: list[str]) -> int:
    """Tokens the model read: each text's count capped at the encoder's max_length (whitespace words without a
    tokenizer)."""
    if lengths is None:
        return sum(len(t.split()) for t in texts)
    limit = getattr(encoder, "max_length", None)
    return int(sum(min(n, limit) if limit else n for n in lengths))


def check_untruncated(encoder: Any, lengths: list[int] | None) -> None:
    """TEI's `truncate=false`: a 413 naming the first text over the encoder's token limit."""
    limit = getattr(encoder, "max_length", None)
    if lengths is None or not limit:
        return
    for i, n in enumerate(lengths):
        if n > limit:
            raise http_error(413, f"inputs[{i}] has {n} tokens; the limit is {limit}. Send 'truncate': true to cut it.")


# JSON characters per number of a float32 written as Python's float repr (e.g. "-0.012345678918552399, ")
JSON_BYTES_PER_NUMBER = 24


def check_token_vectors_size(encoder: Any, lengths: list[int] | None, limits: Limits) -> None:
    """/embed_all: a 413 before the work when the token vectors of a request (each text's tokens, cut at the
    encoder's token limit, × the hidden size) would be more than `max_response_bytes` as JSON."""
    limit = getattr(encoder, "max_length", None)
    tokens = sum(min(n, limit) if limit else n for n in lengths or [])
    size = tokens * encoder.dim * JSON_BYTES_PER_NUMBER
    if size > limits.max_response_bytes:
        raise http_error(
            413,
            f"The response would hold {tokens} token vectors of {encoder.dim} numbers (about {size} bytes as JSON); "
            f"the limit is {limits.max_response_bytes} bytes: send fewer or shorter inputs.",
        )


def allowed_dimensions(encoder: Any, collection: Collection | None) -> str:
    k = getattr(getattr(collection, "transform", None), "n_components_", None)
    native = f"{encoder.dim} (the encoder's own vectors)"
    return native if k is None else f"{native} or 1..{k} (the collection's whitening, first components)"


def project(
    vectors: np.ndarray,
    dimensions: int | None,
    encoder: Any,
    collection: Collection | None,
    *,
    normalize: bool,
    status: int = 400,
) -> np.ndarray:
    """`dimensions` of /v1/embeddings and TEI's /embed: the vectors as given when absent or equal to the encoder's
    dimension; with a collection whose whitening keeps k components, 1 ≤ dimensions ≤ k gives the first `dimensions`
    whitened components (eigen-directions are sorted by variance, so this is the whitening fitted with
    n_components=dimensions), L2-normalised when `normalize` (OpenAI's shortened embeddings are unit length; cosine
    of whitened vectors is what the collection searches with). Anything else is a `status` error naming what is
    allowed."""
    if not check_dimensions(dimensions, encoder, collection, status):
        return vectors
    transform = collection.transform  # type: ignore[union-attr]  # check_dimensions: it has a whitening
    whitened = np.ascontiguousarray(transform.transform(vectors)[:, :dimensions], dtype=np.float32)
    if normalize:
        whitened /= np.maximum(np.linalg.norm(whitened, axis=1, keepdims=True), 1e-12)
    return whitened


def check_dimensions(dimensions: int | None, encoder: Any, collection: Collection | None, status: int = 400) -> bool:
    """Whether `dimensions` asks for the whitened components (True) or the vectors as they are (False: absent or
    the encoder's dimension); a `status` error naming what is allowed for any other number."""
    if dimensions is None:
        return False
    k = getattr(getattr(collection, "transform", None), "n_components_", None)
    if k is not None and dimensions <= k:
        return True
    if dimensions == encoder.dim:
        return False
    allowed = allowed_dimensions(encoder, collection)
    raise http_error(status, f"dimensions={dimensions} is not available: use {allowed}.")


def check_prompt_name(encoder: Any, prompt_name: str | None) -> str:
    """The prompt text TEI's `prompt_name` names ('' for none); a 400 naming the model's prompts otherwise (valid
    JSON asking for what this model does not have, as an unavailable `dimensions` on /v1/embeddings: the schema
    cannot list a model's prompts)."""
    if prompt_name is None:
        return ""
    prompts = getattr(encoder, "prompts", {})
    if prompt_name not in prompts:
        names = ", ".join(repr(n) for n in prompts)
        offered = f"one of this model's prompts: {names}" if names else "null: this model has no prompts"
        raise http_error(400, f"prompt_name={prompt_name!r} is not available; use {offered}.")
    return prompts[prompt_name]
