"""semspace: semantic similarity and semantic search (encoders, whitening, evaluation)."""

__version__ = "0.1.0"

from semspace.encode import EmbeddingCache, Encoder, Pooling
from semspace.transform import TuneResult, Whitening, WhiteningStats, tune_whitening

__all__ = [
    "EmbeddingCache",
    "Encoder",
    "Pooling",
    "TuneResult",
    "Whitening",
    "WhiteningStats",
    "__version__",
    "tune_whitening",
]
