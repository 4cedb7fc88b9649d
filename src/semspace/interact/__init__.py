"""Interaction models: cross-encoders and CUR / AXN search under a budget of cross-encoder calls."""

from semspace.interact.axn import AXNIndex, factorize_anchor_scores
from semspace.interact.calibration import RerankCalibration, RerankChoice, calibrate_rerank
from semspace.interact.cur import BM25FirstStage, CURIndex, CURSearchResult, retrieve_and_rerank

__all__ = [
    "AXNIndex",
    "BM25FirstStage",
    "CURIndex",
    "CURSearchResult",
    "RerankCalibration",
    "RerankChoice",
    "calibrate_rerank",
    "factorize_anchor_scores",
    "retrieve_and_rerank",
]
