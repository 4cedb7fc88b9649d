"""Interaction models: cross-encoders and CUR search under a budget of cross-encoder calls."""

from semspace.interact.cur import BM25FirstStage, CURIndex, CURSearchResult, retrieve_and_rerank

__all__ = ["BM25FirstStage", "CURIndex", "CURSearchResult", "retrieve_and_rerank"]
