"""Transforms of sentence vectors: streaming statistics, generalised whitening, robust tuning."""

from semspace.transform.projection import RandomProjection, entropy_dimension, jl_dimension
from semspace.transform.similarity import paired_cosine, spearman
from semspace.transform.stats import WhiteningStats
from semspace.transform.tune import TuneResult, tune_whitening
from semspace.transform.whitening import Whitening

__all__ = [
    "RandomProjection",
    "TuneResult",
    "Whitening",
    "WhiteningStats",
    "entropy_dimension",
    "jl_dimension",
    "paired_cosine",
    "spearman",
    "tune_whitening",
]
