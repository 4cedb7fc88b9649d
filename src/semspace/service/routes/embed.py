"""POST /embed (texts → vectors) and POST /similarity (pairs → cosine scores)."""

from __future__ import annotations

from fastapi import APIRouter

from semspace.service.deps import EncoderDep, LimitsDep
from semspace.service.schemas import EmbedRequest, EmbedResponse, SimilarityRequest, SimilarityResponse
from semspace.transform import paired_cosine

router = APIRouter(tags=["embeddings"])


@router.post("/embed", response_model=EmbedResponse)
def embed(body: EmbedRequest, encoder: EncoderDep, limits: LimitsDep) -> EmbedResponse:
    """One vector per text (normalised to unit length when `normalize` is true)."""
    limits.check_texts(body.texts)
    vectors = encoder.encode(body.texts, normalize=body.normalize, show_progress_bar=False)
    return EmbedResponse(model=encoder.model_id, dim=vectors.shape[1], embeddings=vectors.tolist())


@router.post("/similarity", response_model=SimilarityResponse)
def similarity(body: SimilarityRequest, encoder: EncoderDep, limits: LimitsDep) -> SimilarityResponse:
    """The cosine of each pair; every distinct text is encoded once."""
    limits.check_texts(body.texts(), "pair texts")
    texts = list(dict.fromkeys(body.texts()))
    vectors = encoder.encode(texts, show_progress_bar=False)
    row = {t: i for i, t in enumerate(texts)}
    a = vectors[[row[p[0]] for p in body.pairs]]
    b = vectors[[row[p[1]] for p in body.pairs]]
    return SimilarityResponse(scores=paired_cosine(a, b).astype(float).tolist())
