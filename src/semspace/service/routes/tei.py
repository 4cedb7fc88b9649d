"""TEI-compatible POST /rerank (a cross-encoder scores query–text pairs) and GET /info (what is served)."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter

from semspace._version import __version__
from semspace.service.deps import CrossEncoderDep, EncoderDep, LimitsDep, MetricsDep, StateDep
from semspace.service.schemas import Info, Rank, RerankRequest, error_responses
from semspace.service.security import StrictJSONRoute

router = APIRouter(tags=["tei"], route_class=StrictJSONRoute)


@router.post(
    "/rerank", response_model=list[Rank], response_model_exclude_none=True, responses=error_responses(404, 413, 422)
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
    )
